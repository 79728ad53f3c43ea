"""Atomic submit limits and deleting jobs: `submit_locks` (one row per submitter, locked while a submit
checks its limits and inserts), `jobs.client` (anonymous callers get limits per address) and
`jobs.deleted_at` (a deleted job keeps a contentless row, so deleting does not reset a rate limit).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

revision: str = "0003"
down_revision: Union[str, Sequence[str], None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "submit_locks",
        sa.Column("subject", sa.String(length=100), nullable=False),
        sa.Column("touched_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("subject"),
    )
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.add_column(sa.Column("client", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("deleted_at", TIMESTAMP, nullable=True))
        batch_op.create_index("ix_jobs_client_created", ["client", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_index("ix_jobs_client_created")
        batch_op.drop_column("deleted_at")
        batch_op.drop_column("client")
    op.drop_table("submit_locks")
