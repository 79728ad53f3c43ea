"""Image model families."""
