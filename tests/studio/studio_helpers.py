"""Helpers the studio tests import (tests/studio/conftest.py holds their fixtures; `require` is the one in
tests/conftest.py, which every test file shares, and is passed on from here)."""

from __future__ import annotations

import os
import socket
import uuid
from contextlib import contextmanager
from pathlib import Path

from conftest import require

POSTGRES = os.environ.get("AIGC_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/")
MYSQL = os.environ.get("AIGC_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306/")
REDIS = os.environ.get("AIGC_TEST_REDIS", "redis://127.0.0.1:6379/11")
LOCAL = ("127.0.0.1", 50000)  # TestClient's client address: loopback, as a local browser or script


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def finished(client, job_id: str, timeout: float = 30.0, headers: dict | None = None) -> dict:
    """Wait (long poll) for a job to finish and return it."""
    response = client.get(f"/api/v1/jobs/{job_id}", params={"wait": timeout}, headers=headers or {})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] in ("succeeded", "failed", "cancelled"), body
    return body


def submit(client, model: str = "digits", headers: dict | None = None, **params) -> dict:
    response = client.post("/api/v1/jobs", json={"model": model, "params": params}, headers=headers or {})
    assert response.status_code == 202, response.text
    return response.json()


@contextmanager
def fresh_database(kind: str, tmp_path: Path):
    """A new empty database on the named backend; yields its URL and drops it afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'studio.db'}"
        return
    from sqlalchemy import create_engine, text

    name = f"aigc_test_{uuid.uuid4().hex[:12]}"
    server = POSTGRES if kind == "postgresql" else MYSQL
    host, port = ("127.0.0.1", 5432) if kind == "postgresql" else ("127.0.0.1", 3306)
    require(port_open(host, port), f"a {kind} server on {host}:{port} (.ci/run starts it)")
    admin = create_engine(server + ("postgres" if kind == "postgresql" else ""), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield server + name
    finally:
        with admin.connect() as connection:
            if kind == "postgresql":
                connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            else:
                connection.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


def start_studio(*args: str, env: dict | None = None):
    """`aigc studio ARGS --port <free>` as a real process, once its health answers: (process, base URL).
    The caller stops it (terminate or a signal) and reads its output with `communicate`."""
    import subprocess
    import sys
    import time

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "AIGC_ZOO": "false", "AIGC_LOG_FORMAT": "json", **(env or {})}
    server = subprocess.Popen([sys.executable, "-m", "aigc", "studio", "--port", str(port), *args], env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{base}/api/v1/health").status_code == 200:
                break
        except httpx.TransportError:
            if server.poll() is not None:
                break  # it exited: the caller's communicate() shows why
            time.sleep(0.1)
    return server, base
