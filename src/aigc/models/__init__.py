"""Model families. Importing this package registers every built-in family (one file each)."""

from aigc.models.image import gan  # noqa: F401
