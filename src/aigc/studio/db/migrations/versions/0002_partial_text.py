"""Jobs keep the text generated so far (`partial_text`), so clients can show text as it streams in. (2026-11-25)"""

import sqlalchemy as sa

from aigc.studio.db.migrations.steps import add_nullable_column

revision, down_revision = "0002", "0001"
upgrade, downgrade = add_nullable_column("jobs", "partial_text", sa.Text())
