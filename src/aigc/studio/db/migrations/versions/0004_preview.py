"""Running jobs keep their latest preview (`jobs.preview_key`: a PNG in the artifact store, e.g. a diffusion
step's estimate of the final images), so the page can show the picture forming. (2026-12-01)"""

import sqlalchemy as sa

from aigc.studio.db.migrations.steps import add_nullable_column

revision, down_revision = "0004", "0003"
upgrade, downgrade = add_nullable_column("jobs", "preview_key", sa.String(length=200))
