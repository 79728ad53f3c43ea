"""A job keeps the moderation decision its prompt got at submission when the policy's action was `warn`
(`jobs.moderation`: category, method, evidence, score and threshold of each finding), so the API and the
page show why the job carries a warning. (2026-12-01)"""

import sqlalchemy as sa

from aigc.studio.db.migrations.steps import add_nullable_column

revision, down_revision = "0005", "0004"
upgrade, downgrade = add_nullable_column("jobs", "moderation", sa.JSON())
