"""Studio fixtures: tiny real models, a fresh database per test on real servers, and app builders.

`database_url` is parametrised over SQLite and the real PostgreSQL and MariaDB servers (127.0.0.1); each
test gets its own empty database, dropped afterwards. A server that is not running skips its cases with
a message, or fails them under AIGC_STRICT=1 (CI).
"""

from __future__ import annotations

import pytest
from helpers import train_tiny  # tests/ is on sys.path (pytest puts the folder above this package there)

from studio.studio_helpers import LOCAL, fresh_database


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def database_url(request, tmp_path):
    with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'studio.db'}"


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory) -> dict[str, str]:
    """Two real trained models: a conditional GAN (10 classes) and an unconditional DCGAN, 8x8 digits."""
    root = tmp_path_factory.mktemp("studio-models")
    return {"digits": str(train_tiny("cgan", root / "cgan").run_dir), "blobs": str(train_tiny("dcgan", root / "dcgan").run_dir)}


@pytest.fixture(scope="session")
def style_catalog(tmp_path_factory):
    """The models that take images (uploads): a tiny AdaIN ("paint"), fast style ("rings") and CycleGAN ("digits-ab")."""
    from aigc.studio.catalog import ModelCatalog

    root = tmp_path_factory.mktemp("studio-style-models")
    runs = {"paint": train_tiny("adain", root / "adain"), "rings": train_tiny("fast", root / "fast"), "digits-ab": train_tiny("cyclegan", root / "cyclegan")}
    return ModelCatalog.from_paths({name: str(run.run_dir) for name, run in runs.items()})


@pytest.fixture(scope="session")
def catalog(tiny_runs):
    from aigc.studio.catalog import ModelCatalog

    return ModelCatalog.from_paths(tiny_runs)


@pytest.fixture
def make_settings(tmp_path, sqlite_url):
    from aigc.studio.settings import StudioSettings

    def make(**overrides):
        values = {"data_dir": tmp_path / "data", "database_url": sqlite_url, "zoo": False, "log_format": "text", "poll_seconds": 0.2}
        values.update(overrides)
        return StudioSettings(**values)

    return make


@pytest.fixture
def make_client(make_settings, catalog):
    """Build a studio and a TestClient (lifespan running: executor started); all closed at the end."""
    from fastapi.testclient import TestClient

    from aigc.studio.app import create_app

    clients = []

    def make(client=LOCAL, **overrides):
        app = create_app(make_settings(**overrides), catalog=catalog)
        test_client = TestClient(app, client=client, raise_server_exceptions=False)
        test_client.__enter__()
        clients.append(test_client)
        return test_client

    yield make
    for test_client in reversed(clients):
        test_client.__exit__(None, None, None)
