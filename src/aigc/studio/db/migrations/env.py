"""Alembic environment for the studio's packaged migrations.

The studio runs these itself at start (`aigc.studio.db.session.upgrade`), handing over its connection. To
write a new revision from a checkout:

    AIGC_DATABASE_URL=sqlite:///dev.db python -m aigc.studio.db.revise "add a column"
"""

from __future__ import annotations

from alembic import context

from aigc.studio.db.models import Base

target_metadata = Base.metadata


def run_migrations(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
else:
    import os

    from aigc.studio.db.session import make_engine

    engine = make_engine(os.environ.get("AIGC_DATABASE_URL", "sqlite:///studio-data/studio.db"))
    with engine.begin() as connection:
        run_migrations(connection)
    engine.dispose()
