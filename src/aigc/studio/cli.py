"""`aigc studio` (serve the API and page), `aigc studio keys ...` (API keys) and `aigc worker` (Celery).

Wired into the main command tree by `aigc.cli.main`:

    from aigc.studio.cli import studio_app, worker
    app.add_typer(studio_app, name="studio")
    app.command("worker")(worker)

Heavy imports (FastAPI, SQLAlchemy, torch) happen inside the commands, so `aigc --help` stays fast.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer

studio_app = typer.Typer(help="The studio: web page + REST API + job queue. `aigc studio` serves it.", invoke_without_command=True, no_args_is_help=False)
keys_app = typer.Typer(help="API keys (required unless the studio listens on loopback only).", no_args_is_help=True)
studio_app.add_typer(keys_app, name="keys")

_MODEL_HELP = "Serve a model: NAME=RUN_DIR (repeatable); also AIGC_MODELS='name=path,...'."


def _settings(**options):
    from aigc.studio.settings import StudioSettings, parse_models

    models = options.pop("model", None)
    if models:
        merged: dict[str, str] = {}
        for item in models:
            merged.update(parse_models(item))
        options["models"] = {**StudioSettings.from_env().models, **merged}
    return StudioSettings.from_env(**options)


@contextmanager
def _open_database(database_url: str | None, data_dir: Path | None):
    """The studio's settings and database as the `keys` commands' options name them; closed on the way out."""
    from aigc.studio.db.session import open_database

    settings = _settings(database_url=database_url, data_dir=data_dir)
    db = open_database(settings.resolved_database_url)
    try:
        yield settings, db
    finally:
        db.dispose()


@studio_app.callback(invoke_without_command=True)
def studio(
    ctx: typer.Context,
    host: Optional[str] = typer.Option(None, "--host", help="Address to listen on (default 127.0.0.1; keys are required off loopback)."),
    port: Optional[int] = typer.Option(None, "--port", help="Port (default 8000)."),
    database_url: Optional[str] = typer.Option(None, "--database-url", help="SQLAlchemy URL (default: a SQLite file in the data folder); also AIGC_DATABASE_URL."),
    executor: Optional[str] = typer.Option(None, "--executor", help="local (worker threads, default) or celery (`aigc worker` processes)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Artifacts and the SQLite file (default ./studio-data); also AIGC_DATA_DIR."),
    model: list[str] = typer.Option([], "--model", help=_MODEL_HELP),
    workers: Optional[int] = typer.Option(None, "--workers", help="Local executor: worker threads (default 1)."),
    auth: Optional[str] = typer.Option(None, "--auth", help="auto (default), required or off."),
    allow_open: bool = typer.Option(False, "--allow-open", help="Allow --auth off on a non-loopback host: anyone who can reach it may use the studio."),
) -> None:
    """Serve the studio: the page at /, the API at /api/v1 (docs at /docs), metrics at /metrics."""
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from aigc.studio.app import create_app
    from aigc.studio.observability import configure_logging
    from aigc.studio.settings import is_loopback

    settings = _settings(host=host, port=port, database_url=database_url, executor=executor, data_dir=data_dir, model=model, workers=workers, auth=auth, allow_open=allow_open or None)
    configure_logging(settings.log_format, settings.log_level)
    app = create_app(settings)  # connects and migrates now: a bad database URL fails here, with a message
    listening = _bind(settings.host, settings.port)  # before anything says "started": a busy port is one clear error
    if not app.state.services.catalog.names():
        typer.echo("warning: no models to serve; add --model NAME=RUN_DIR or install the zoo", err=True)
    if settings.auth == "off" and not is_loopback(settings.host):
        typer.secho(f"WARNING: the studio is OPEN: no API keys, listening on {settings.host}. Anyone who can reach this machine can run jobs and read every job.", err=True, fg="red", bold=True)
    typer.echo(f"aigc studio on http://{settings.host}:{listening.getsockname()[1]}  (API docs: /docs, executor: {settings.executor}, keys {'required' if settings.keys_required else 'not required on loopback'})", err=True)
    config = uvicorn.Config(app, log_config=None, access_log=False, proxy_headers=False, timeout_graceful_shutdown=max(1, int(settings.shutdown_grace_seconds)))
    uvicorn.Server(config).run(sockets=[listening])


def _bind(host: str, port: int):
    """A listening socket on host:port, or an AigcError saying what is in the way."""
    import socket

    from aigc.errors import AigcError

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as error:
        raise AigcError(f"cannot listen on {host!r}: {error.strerror}", field="--host", fix="use an address of this machine, e.g. 127.0.0.1 or 0.0.0.0") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # (a port in TIME_WAIT after a restart is free)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as error:
        sock.close()
        import errno

        if error.errno == errno.EADDRINUSE:
            raise AigcError(f"port {port} on {host} is already in use (another studio or server is listening there)", field="--port", fix="stop the other server, or pick another port with --port N") from None
        if error.errno == errno.EACCES:
            raise AigcError(f"not allowed to listen on port {port}", field="--port", fix="ports below 1024 need root: use one from 1024 to 65535") from None
        raise AigcError(f"cannot listen on {host}:{port}: {error.strerror}", field="--host", fix="use an address of this machine, e.g. 127.0.0.1 or 0.0.0.0") from None
    sock.set_inheritable(True)
    return sock


@keys_app.command("create")
def keys_create(
    name: str = typer.Argument(..., help="A name for the key (and its account, unless --account is given)."),
    account: Optional[str] = typer.Option(None, "--account", help="The account that owns the key (created when new)."),
    rate_limit: Optional[int] = typer.Option(None, "--rate-limit", min=1, help="Jobs per minute for this key (default: the server's)."),
    queue_limit: Optional[int] = typer.Option(None, "--queue-limit", min=1, help="Unfinished jobs at once for this key (default: the server's)."),
    database_url: Optional[str] = typer.Option(None, "--database-url", help="The studio's database (default: as `aigc studio`)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="The studio's data folder (for the default SQLite file)."),
) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    from aigc.studio.keys import create_key

    with _open_database(database_url, data_dir) as (_, db):
        key, row = create_key(db, name, account=account, rate_limit_per_minute=rate_limit, queue_limit=queue_limit)
    typer.echo(f"created key {row.prefix} ({name}); send it as `X-API-Key`. It is shown only now:", err=True)
    typer.echo(key)


@keys_app.command("list")
def keys_list(
    database_url: Optional[str] = typer.Option(None, "--database-url", help="The studio's database."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="The studio's data folder."),
) -> None:
    """Keys by prefix, account, limits and last use (never the keys themselves)."""
    from aigc.studio.keys import list_keys

    with _open_database(database_url, data_dir) as (settings, db):
        for row in list_keys(db):
            # A key without its own limits has the server's defaults (each key counts on its own).
            rate = f"{row['rate_limit_per_minute']}/min" if row["rate_limit_per_minute"] else f"{settings.rate_limit_per_minute}/min (default)"
            queue = f"{row['queue_limit']}" if row["queue_limit"] else f"{settings.queue_limit} (default)"
            typer.echo(
                f"{row['id']:>4}  {row['prefix']}  {row['name']:<20} account={row['account']:<20} {'REVOKED' if row['revoked'] else 'active'}"
                f"  rate {rate}  queue {queue}  last used {row['last_used_at'] or 'never'}"
            )


@keys_app.command("revoke")
def keys_revoke(
    key: str = typer.Argument(..., help="The key's prefix (from `keys list`) or id."),
    database_url: Optional[str] = typer.Option(None, "--database-url", help="The studio's database."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="The studio's data folder."),
) -> None:
    """Revoke a key: requests with it get 401 from then on."""
    from aigc.errors import AigcError
    from aigc.studio.keys import revoke_key

    with _open_database(database_url, data_dir) as (_, db):
        count = revoke_key(db, key)
    if count == 0:
        raise AigcError(f"no active key {key!r}", field="KEY", fix="see `aigc studio keys list`")
    typer.echo(f"revoked {count} key(s)")


@studio_app.command("purge")
def purge(
    older_than_days: Optional[float] = typer.Option(None, "--older-than-days", help="Delete finished jobs created more than this many days ago (default: AIGC_RETENTION_DAYS)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only count what would be deleted."),
    database_url: Optional[str] = typer.Option(None, "--database-url", help="The studio's database (default: as `aigc studio`)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="The studio's data folder (artifacts, default SQLite file)."),
) -> None:
    """The retention period: delete finished jobs older than N days with their prompts, artifacts and
    files (run it daily, e.g. from cron). Unfinished jobs stay."""
    from aigc.errors import AigcError
    from aigc.studio.catalog import ModelCatalog
    from aigc.studio.jobs.queue import purge as purge_jobs
    from aigc.studio.services import build_services

    settings = _settings(database_url=database_url, data_dir=data_dir)
    days = older_than_days if older_than_days is not None else settings.retention_days
    if days is None or not days > 0:
        raise AigcError(f"expected a number of days above 0 (got {days})", field="--older-than-days", fix="say --older-than-days 30, or set AIGC_RETENTION_DAYS=30")
    services = build_services(settings, ModelCatalog([]))  # no models: purging loads none
    try:
        report = purge_jobs(services, days, dry_run=dry_run)
    finally:
        services.close()
    verb = "would delete" if dry_run else "deleted"
    typer.echo(f"{verb} {report['jobs']} job(s) older than {days:g} days: {report['artifacts']} artifact(s), {report['bytes']} bytes" + ("" if dry_run else f", {report['files']} file(s)"))


def worker(
    database_url: Optional[str] = typer.Option(None, "--database-url", help="The studio's database (AIGC_DATABASE_URL)."),
    broker_url: Optional[str] = typer.Option(None, "--broker-url", help="Celery broker (AIGC_BROKER_URL, default redis://127.0.0.1:6379/0)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Shared artifact folder (AIGC_DATA_DIR)."),
    model: list[str] = typer.Option([], "--model", help=_MODEL_HELP),
    name: Optional[str] = typer.Option(None, "--name", help="Worker name (default celery@HOST); run one worker per GPU."),
    loglevel: str = typer.Option("INFO", "--loglevel", help="Celery log level."),
) -> None:
    """Run a Celery worker for `aigc studio --executor celery`: one job at a time, acknowledged late."""
    import os

    from aigc.studio.jobs.celery_executor import make_celery
    from aigc.studio.observability import configure_logging
    from aigc.studio.services import build_services

    settings = _settings(database_url=database_url, broker_url=broker_url, data_dir=data_dir, model=model)
    # The task builds its services from the environment: hand the resolved settings down that way.
    os.environ.update({"AIGC_DATABASE_URL": settings.resolved_database_url, "AIGC_BROKER_URL": settings.broker_url, "AIGC_DATA_DIR": str(settings.data_dir)})
    if settings.models:
        import json

        os.environ["AIGC_MODELS"] = json.dumps(settings.models)
    configure_logging(settings.log_format, settings.log_level)
    build_services(settings).close()  # fail now, with a message, if the database or a model is wrong
    celery = make_celery(settings.broker_url)
    argv = ["worker", "--pool", "solo", "--concurrency", "1", "--prefetch-multiplier", "1", "--loglevel", loglevel, "--queues", "aigc-studio"]
    if name:
        argv += ["--hostname", name]
    celery.worker_main(argv)
