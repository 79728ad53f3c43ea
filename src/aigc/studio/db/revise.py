"""Write a new Alembic revision by comparing the models with a database at head (developers only).

    AIGC_DATABASE_URL=sqlite:////tmp/dev.db python -m aigc.studio.db.revise "add a column"
"""

from __future__ import annotations

import os
import sys

from alembic import command
from alembic.config import Config

from aigc.studio.db.session import make_engine, migrations_dir, upgrade


def main(message: str) -> None:
    engine = make_engine(os.environ.get("AIGC_DATABASE_URL", "sqlite:////tmp/aigc-revise.db"))
    upgrade(engine)
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)


if __name__ == "__main__":
    main(" ".join(sys.argv[1:]) or "change")
