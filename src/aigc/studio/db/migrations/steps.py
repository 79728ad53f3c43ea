"""Schema steps that several revisions take, written once. A revision keeps its own docstring and identifiers;
what it does to the schema is one of these. They stay as they are once a revision uses them (a migration must
do tomorrow what it did when it shipped): a change of behaviour is a new function, not an edit."""

from __future__ import annotations

from typing import Callable

import sqlalchemy as sa
from alembic import op


def add_nullable_column(table: str, name: str, type_: sa.types.TypeEngine) -> tuple[Callable[[], None], Callable[[], None]]:
    """(upgrade, downgrade) that add a nullable column `name` to `table` (existing rows get NULL) and drop it
    again. Batch mode, so SQLite (which cannot drop a column in place) copies the table; the others alter it."""

    def upgrade() -> None:
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column(name, type_, nullable=True))  # a new Column each run: one belongs to one table

    def downgrade() -> None:
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column(name)

    return upgrade, downgrade
