"""Uploads get owners (`upload_owners`: sha256, account, time): an uploaded image is fetched and used in jobs
only by the accounts that uploaded it, and deleted with the last of them (DELETE /api/v1/me, purge). Uploads
stored before this revision have no owner row: the jobs that name them still run, their owners can upload the
file again to fetch it. (2026-12-01)"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

revision, down_revision = "0006", "0005"


def upgrade() -> None:
    op.create_table(
        "upload_owners",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("upload_owners") as batch_op:
        batch_op.create_index("ix_upload_owners_sha256", ["sha256"], unique=False)


def downgrade() -> None:
    op.drop_table("upload_owners")
