"""The studio's parts on their own: artifact store, provenance formats, settings and the CLI."""

from __future__ import annotations

import wave
from io import BytesIO

import numpy as np
import pytest
from typer.testing import CliRunner

from aigc.errors import ConfigError
from aigc.generation.metadata import a1111_parameters, parse_a1111_parameters
from aigc.studio.settings import StudioSettings
from aigc.studio.storage import LocalArtifactStore


def test_store_is_content_addressed_atomic_and_refuses_foreign_keys(tmp_path):
    store = LocalArtifactStore(tmp_path / "artifacts")
    key = store.put(b"hello", ".txt")
    assert key == store.put(b"hello", ".txt")  # same content, same key, stored once
    assert key.startswith("2c/f2/2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
    assert store.read(key) == b"hello" and store.exists(key)
    assert [p.name for p in (tmp_path / "artifacts").rglob("*") if p.is_file()] == [key.rsplit("/", 1)[1]]  # no temporary files left
    (tmp_path / "secret.txt").write_text("no")
    for bad in ("../secret.txt", "../../etc/passwd", "/etc/passwd", "2c/f2/../../../secret.txt", key + "/..", ""):
        with pytest.raises(KeyError):
            store.read(bad)
        assert not store.exists(bad)
    with pytest.raises(ValueError):
        store.put(b"x", "/../../x")


def test_a1111_parameters_round_trip_through_the_reader():
    text = a1111_parameters("a cat, sitting: on a mat", "blurry, dark", {"Seed": 5, "Size": "28x28", "Model hash": "abc", "Model": "cgan: mnist", "Label": None})
    assert text.splitlines()[0] == "a cat, sitting: on a mat" and text.splitlines()[1] == "Negative prompt: blurry, dark"
    parsed = parse_a1111_parameters(text)
    assert parsed["Prompt"] == "a cat, sitting: on a mat" and parsed["Negative prompt"] == "blurry, dark"
    assert parsed["Seed"] == "5" and parsed["Size"] == "28x28" and parsed["Model"] == "cgan: mnist" and "Label" not in parsed
    assert parse_a1111_parameters(a1111_parameters("", "", {"Seed": 1, "Model": "m", "Size": "8x8"}))["Prompt"] == ""


def test_settings_come_from_the_environment_with_errors_that_name_the_variable(tmp_path):
    settings = StudioSettings.from_env({"AIGC_DATABASE_URL": "sqlite:///x.db", "AIGC_MODELS": "a=runs/a,b=runs/b", "AIGC_CORS_ORIGINS": "https://a.example, https://b.example", "AIGC_WORKERS": "3"})
    assert settings.models == {"a": "runs/a", "b": "runs/b"} and settings.cors_origins == ["https://a.example", "https://b.example"] and settings.workers == 3
    assert StudioSettings.from_env({"AIGC_MODELS": '{"x": "runs/x"}'}).models == {"x": "runs/x"}
    assert StudioSettings.from_env({}, data_dir=tmp_path).resolved_database_url == f"sqlite:///{tmp_path.resolve() / 'studio.db'}"
    with pytest.raises(ConfigError) as error:
        StudioSettings.from_env({"AIGC_EXECUTOR": "threads"})
    assert error.value.field == "AIGC_EXECUTOR"
    with pytest.raises(ConfigError) as error:
        StudioSettings.from_env({"AIGC_WORKERS": "many"})
    assert error.value.field == "AIGC_WORKERS"
    assert not StudioSettings(host="127.0.0.1").keys_required and not StudioSettings(host="::1").keys_required
    assert StudioSettings(host="0.0.0.0").keys_required and StudioSettings(host="127.0.0.1", auth="required").keys_required


def test_cli_creates_lists_and_revokes_keys_and_refuses_a_bad_database(tmp_path, make_client):
    from aigc.studio.cli import studio_app

    runner = CliRunner()
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    created = runner.invoke(studio_app, ["keys", "create", "carol", "--database-url", url, "--rate-limit", "5"])
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("aigc_") and len(key) > 40
    listed = runner.invoke(studio_app, ["keys", "list", "--database-url", url])
    assert key.split("_")[1] in listed.output and key not in listed.output and "active" in listed.output

    client = make_client(database_url=url, auth="required")
    assert client.get("/api/v1/models", headers={"X-API-Key": key}).status_code == 200
    assert runner.invoke(studio_app, ["keys", "revoke", key.split("_")[1], "--database-url", url]).exit_code == 0
    assert client.get("/api/v1/models", headers={"X-API-Key": key}).status_code == 401

    refused = runner.invoke(studio_app, ["--database-url", "postgresql://x@127.0.0.1:1/none", "--data-dir", str(tmp_path)])
    assert isinstance(refused.exception, ConfigError) and refused.exception.field == "AIGC_DATABASE_URL"
    for command in ([], ["keys"], ["keys", "create"]):
        assert runner.invoke(studio_app, [*command, "--help"]).exit_code == 0


def test_the_studio_command_serves_and_logs_json_lines(tiny_runs, tmp_path):
    import json

    import httpx
    from studio.studio_helpers import start_studio

    server, base = start_studio("--data-dir", str(tmp_path / "data"), "--model", f"digits={tiny_runs['digits']}")
    try:
        job = httpx.post(f"{base}/api/v1/jobs", json={"model": "digits", "params": {"count": 2}}).json()
        done = httpx.get(f"{base}/api/v1/jobs/{job['id']}", params={"wait": 30}).json()
        assert done["status"] == "succeeded" and len(done["artifacts"]) == 2
        assert (tmp_path / "data" / "studio.db").is_file()  # the default database: a SQLite file in the data folder
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    records = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    access = [r for r in records if r["message"] == "request" and r.get("path") == "/api/v1/jobs"]
    assert access and access[0]["status"] == 202 and access[0]["method"] == "POST" and len(access[0]["request_id"]) == 12
    assert any(r["message"] == "job finished" and r.get("job_id") == job["id"] for r in records)
    assert "Traceback" not in stderr


def test_compose_and_dockerfile_use_real_settings_and_commands():
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[2]
    compose = yaml.safe_load((root / "compose.yaml").read_text())
    assert set(compose["services"]) == {"api", "worker", "redis", "postgres"}
    for name in ("api", "worker"):
        service = compose["services"][name]
        for variable in service["environment"]:
            assert variable.startswith("AIGC_") and variable[5:].lower() in StudioSettings.model_fields, variable
    assert compose["services"]["worker"]["command"] == ["aigc", "worker"]
    dockerfile = (root / "Dockerfile").read_text()
    assert 'CMD ["aigc", "studio", "--host", "0.0.0.0", "--port", "8000"]' in dockerfile
    for line in dockerfile.splitlines():
        if line.strip().startswith("AIGC_"):
            assert line.strip().split("=")[0][5:].lower() in StudioSettings.model_fields, line


def test_revoke_finds_an_all_digit_prefix_before_an_id(tmp_path):
    from aigc.studio.db.models import ApiKey
    from aigc.studio.db.session import open_database
    from aigc.studio.keys import create_key, revoke_key, verify_key

    db = open_database(f"sqlite:///{tmp_path / 'k.db'}")
    first, _ = create_key(db, "first")
    second, row = create_key(db, "second")
    with db.session() as session:  # a prefix of digits only happens (8 hex digits): 2% of keys
        session.get(ApiKey, row.id).prefix = "00000001"
        session.commit()
    digits_key = second.replace(second.split("_")[1], "00000001")
    with db.session() as session:
        from aigc.studio.keys import hash_key

        session.get(ApiKey, row.id).key_hash = hash_key(digits_key)
        session.commit()
    assert revoke_key(db, "00000001") == 1  # the prefix, not the key with id 1
    assert verify_key(db, first) is not None and verify_key(db, digits_key) is None
    assert revoke_key(db, "1") == 1 and verify_key(db, first) is None  # no such prefix: the id
    db.dispose()
