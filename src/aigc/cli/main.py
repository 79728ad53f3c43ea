"""`aigc train | generate | models | data` — thin wrappers over the Python API.

Every user mistake is an AigcError: printed as one clear message (no traceback) with exit status 2.
"""

from __future__ import annotations

import json
import sys
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from aigc.errors import AigcError, AigcWarning

app = typer.Typer(help="aigc: train, generate with and measure generative models — offline.", no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
models_app = typer.Typer(help="Model families and presets.", no_args_is_help=True)
data_app = typer.Typer(help="Datasets that load offline.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(data_app, name="data")
console = Console()
errors = Console(stderr=True)


@app.command()
def train(
    preset: Optional[str] = typer.Argument(None, help="A preset name (`aigc models list`) or a .toml file."),
    set_: list[str] = typer.Option([], "--set", help="Override a setting: --set train.max_steps=500 (repeatable)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run folder (default runs/PRESET-TIMESTAMP)."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", min=1, help="Shortcut for --set train.max_steps=N."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue a run: its folder (from its latest checkpoint) or one of its checkpoints, RUN/checkpoints/step-N."),
    init_from: Optional[str] = typer.Option(None, "--init-from", help="Fine-tune: start from the weights of a run, checkpoint or zoo model (train.init_from)."),
    allow_partial: bool = typer.Option(False, "--allow-partial", help="With --init-from: layers whose names or shapes differ keep fresh weights (a new head)."),
) -> None:
    """Train a model; checkpoints, metrics.jsonl and sample grids go to the run folder."""
    import logging

    from aigc.api import train as train_run
    from aigc.errors import ConfigError

    if init_from is not None:
        if resume is not None:
            raise ConfigError("--init-from starts a new run from another run's weights; --resume continues a run", field="--init-from", fix="use one of them")
        set_ = [*set_, f"train.init_from={json.dumps(init_from)}"]
    if allow_partial:
        set_ = [*set_, "train.allow_partial_init=true"]

    # What the loop does before its first step (loading data can take a while) goes to stderr at once.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    training_log = logging.getLogger("aigc.training")
    training_log.addHandler(handler)
    training_log.setLevel(logging.INFO)
    try:
        result = train_run(preset, overrides=set_, out=out, max_steps=max_steps, resume=resume)
    finally:
        training_log.removeHandler(handler)
    if result.checkpoint is None:  # only rank 0 writes, and only rank 0 reports
        return
    if result.stop_reason.startswith("already finished"):
        console.print(f"[bold]{result.run_dir}[/] has {result.stop_reason}: nothing to train", highlight=False, soft_wrap=True)
        console.print(f"to train longer: aigc train --resume {result.run_dir} --max-steps N (N > {result.step})", highlight=False, soft_wrap=True)
        console.print(f"checkpoint: {result.checkpoint}", highlight=False, soft_wrap=True)
        return
    console.print(f"[bold]{result.stop_reason}[/] at step {result.step}")
    console.print(f"checkpoint: {result.checkpoint}")
    console.print(f"samples:    {result.run_dir / 'samples'}")


@models_app.command("list")
def models_list(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Registered families and the presets that train them."""
    from aigc.config import list_presets, read_preset_or_file
    from aigc.registry import list_models

    families = [{"name": s.name, "modality": s.modality, "description": s.description} for s in list_models()]
    presets = []
    for name in list_presets():
        raw = read_preset_or_file(name)
        presets.append({"name": name, "family": raw.get("family"), "dataset": raw.get("data", {}).get("name", "mnist"), "description": raw.get("description", "")})
    from aigc import zoo

    zoo_entries = [{**asdict(e), "command": e.command} for e in zoo.list_entries()]
    if as_json:
        print(json.dumps({"families": families, "presets": presets, "zoo": zoo_entries}, indent=2))
        return
    console.print(_one_line_table("Model families", ("family", "modality"), [(f["name"], f["modality"], f["description"]) for f in families]))
    console.print(_one_line_table("Presets (aigc train PRESET)", ("preset", "family"), [(p["name"], p["family"], f"[{p['dataset']}] {p['description']}") for p in presets]))
    rows = [(e["name"], e["family"], str(e["steps"]), e["description"]) for e in zoo_entries]
    console.print(_one_line_table("Zoo: trained models, offline (aigc generate NAME)", ("name", "family", "steps"), rows))
    console.print("Full descriptions: aigc models show NAME (or --json).", highlight=False)


def _one_line_table(title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> Table:
    """One row per entry whatever the terminal's width (80 columns included): the names are never cut (they are
    what you type), the description, last, is cut with an ellipsis; `aigc models show NAME` prints it whole."""
    widths = [max([len(column), *(len(row[index]) for row in rows)]) for index, column in enumerate(columns)]
    room = max(console.width - sum(widths) - 2 * len(widths), 12)  # two spaces between columns
    table = Table(title=title, box=None, pad_edge=False, padding=(0, 2, 0, 0))
    for column, width in zip(columns, widths):
        table.add_column(column, no_wrap=True, width=width)
    table.add_column("description", no_wrap=True)
    for *names, description in rows:
        cut = description if len(description) <= room else description[: room - 1] + "…"
        table.add_row(*(Text(text) for text in (*names, cut)))  # Text: a "[dataset]" is words, not markup
    return table


def _print_card(entry) -> None:
    """A zoo model's card: what it is, its data and licence, training budget, metrics, intended use,
    limitations and the safety settings that apply to what it makes."""
    from aigc.safety.cards import zoo_card

    card = zoo_card(entry.name)
    training = card["training"]
    console.print(f"[bold]zoo model {entry.name}[/] ({entry.family}, step {entry.steps}, {entry.minutes} training minutes)\n{entry.description}", highlight=False)
    console.print(f"make it again: {entry.command}", highlight=False)
    sections = [
        ("data", [card["data"] or "not recorded", f"licence: {card['license'] or 'not recorded'}"]),
        ("training budget", [f"{training['steps']:,} steps, {training['cpu_minutes']} CPU-minutes on one core (preset {training['preset']}); weights {training['precision']}, sha256 {training['weights_sha256'][:16]}"]),
        ("metrics", [", ".join(f"{key} {value}" for key, value in card["metrics"].items()) or "none recorded"]),
        ("intended use", [card["intended_use"]]),
        ("limitations", card["limitations"]),
        ("safety settings", card["safety"]),
    ]
    for title, lines in sections:
        console.print(f"[bold]{title}[/]", highlight=False)
        for line in lines:
            console.print(f"  {escape(line)}", highlight=False, soft_wrap=True)


@models_app.command("show")
def models_show(name: str = typer.Argument(..., help="A family, preset or zoo model name from `aigc models list`.")) -> None:
    """Everything about one family, preset or zoo model: description, settings, data, how it was trained."""
    from aigc import zoo
    from aigc.config import list_presets, read_preset_or_file
    from aigc.errors import ConfigError
    from aigc.registry import list_models

    found = False
    entry = zoo.get_entry(name)
    if entry is not None:
        found = True
        _print_card(entry)
    if name in list_presets():
        found = True
        raw = read_preset_or_file(name)
        console.print(f"[bold]preset {name}[/] (family {raw.get('family')}, data {raw.get('data', {}).get('name', 'mnist')})\n{raw.get('description', '')}", highlight=False)
        console.print(f"train it: aigc train {name} --out runs/{name}", highlight=False)
    family = next((spec for spec in list_models() if spec.name == name), None)
    if family is not None:
        found = True
        console.print(f"[bold]family {family.name}[/] ({family.modality})\n{family.description}", highlight=False)
        console.print(f"presets: {', '.join(p for p in list_presets() if read_preset_or_file(p).get('family') == name) or 'none'}", highlight=False)
    if not found:
        raise ConfigError(f"no family, preset or zoo model is called {name!r}", field="NAME", fix="see `aigc models list`")


@models_app.command("export")
def models_export(
    run: Path = typer.Argument(..., help="The run folder to export (its latest checkpoint)."),
    name: str = typer.Argument(..., help="Zoo name, e.g. dcgan-mnist."),
    preset: str = typer.Option(..., "--preset", help="The preset the run was trained with."),
    set_: list[str] = typer.Option([], "--set", help="The overrides it was trained with (recorded for retraining)."),
    description: str = typer.Option("", "--description"),
    minutes: float = typer.Option(0.0, "--minutes", help="Training time, for the manifest."),
) -> None:
    """Copy a run's weights (EMA when present) into the package's model zoo."""
    from aigc import zoo

    entry = zoo.export(run, name, preset=preset, overrides=set_, description=description, minutes=minutes)
    console.print(f"exported {entry.name} (step {entry.steps}) to {entry.path}")


@models_app.command("retrain")
def models_retrain(name: str = typer.Argument(..., help="A zoo name from `aigc models list`.")) -> None:
    """Train a zoo model again with its recorded preset and overrides, then export it over the old one."""
    import time

    from aigc import zoo
    from aigc.api import default_run_dir, training_callbacks
    from aigc.config import load_config
    from aigc.errors import ConfigError
    from aigc.training.loop import fit

    entry = zoo.get_entry(name)
    if entry is None:
        raise ConfigError(f"no zoo model {name!r}", fix=f"use one of: {', '.join(e.name for e in zoo.list_entries())}")
    console.print(f"retraining {name}: {entry.command}")
    started = time.perf_counter()
    run_dir = default_run_dir(f"zoo-{name}")
    config = load_config(entry.preset, entry.overrides)
    fit(config, run_dir, callbacks=training_callbacks(config, run_dir))
    entry = zoo.export(run_dir, name, preset=entry.preset, overrides=entry.overrides, description=entry.description, minutes=(time.perf_counter() - started) / 60)
    console.print(f"exported {entry.name} (step {entry.steps}) to {entry.path}")


@data_app.command("list")
def data_list() -> None:
    """Datasets, where they come from, and whether they are available here."""
    from aigc.registry import list_datasets

    table = Table("dataset", "modality", "classes", "available", "source")
    for spec in list_datasets():
        missing = spec.available()
        table.add_row(spec.name, spec.modality, str(spec.num_classes or "-"), "yes" if missing is None else f"no: {missing}", spec.source)
    console.print(table)


@data_app.command("show")
def data_show(
    name: str = typer.Argument(..., help="A dataset name from `aigc data list`."),
    path: Optional[str] = typer.Option(None, "--path", help="Your own copy (a folder), as data.path."),
    image_size: int = typer.Option(28, "--image-size", help="Images: the size they are fitted to."),
    channels: int = typer.Option(1, "--channels", help="Images: 1 or 3."),
    tokenizer: str = typer.Option("char", "--tokenizer", help="Text: char, word or bpe."),
) -> None:
    """Load a dataset and print its splits, classes (or vocabulary) and fingerprint."""
    import typing
    from types import SimpleNamespace

    from aigc.config import DataConfig
    from aigc.errors import ConfigError
    from aigc.data import load_dataset
    from aigc.registry import get_dataset

    spec = get_dataset(name)
    console.print(f"[bold]{spec.name}[/]: {spec.description}\nsource: {spec.source}")
    from aigc.models.text.rnn import RNNConfig
    from aigc.models.text.seq2seq import Seq2SeqConfig

    # What a model would tell the data: image geometry, or a tokenizer and sequence lengths (the families' defaults).
    kinds = typing.get_args(Seq2SeqConfig.model_fields["tokenizer_kind"].annotation)
    if tokenizer not in kinds:
        raise ConfigError(f"unknown tokenizer {tokenizer!r}", field="--tokenizer", fix=f"use one of: {', '.join(kinds)}")
    pairs = Seq2SeqConfig(tokenizer_kind=tokenizer)
    model = SimpleNamespace(
        image_size=image_size, channels=channels, **pairs.model_dump(include={"tokenizer", "tokenizer_kind", "max_vocab", "max_source_length", "max_target_length"}),
        context_length=RNNConfig().context_length,
    )
    bundle = load_dataset(DataConfig(name=name, path=path), model)
    for key, value in bundle.describe().items():
        console.print(f"{key}: {value}")


from aigc.cli.evaluate import eval_command  # noqa: E402
from aigc.cli.generate import generate_command  # noqa: E402
from aigc.cli.music import render_command  # noqa: E402
from aigc.cli.optimize import optimize_command  # noqa: E402
from aigc.cli.search import search_command  # noqa: E402
from aigc.cli.robustness import robustness_command  # noqa: E402
from aigc.cli.safety import init_signing_command, moderate_command, sign_command, verify_command  # noqa: E402
from aigc.cli.stylize import stylize_command, translate_command  # noqa: E402
from aigc.cli.text import prepare_command  # noqa: E402
from aigc.studio.cli import studio_app, worker  # noqa: E402

app.command("generate")(generate_command)
app.command("stylize")(stylize_command)
app.command("render")(render_command)
app.command("translate")(translate_command)
app.command("optimize")(optimize_command)
app.command("search")(search_command)
app.command("moderate")(moderate_command)
app.command("verify")(verify_command)
app.command("robustness")(robustness_command)
keys_app = typer.Typer(help="Signing credentials for content credentials (C2PA).", no_args_is_help=True)
keys_app.command("init-signing")(init_signing_command)
keys_app.command("sign")(sign_command)
app.add_typer(keys_app, name="keys")
app.command("eval")(eval_command)
data_app.command("prepare")(prepare_command)
app.add_typer(studio_app, name="studio")
app.command("worker", help="Run a studio job worker (Celery on Redis) that takes jobs from the queue.")(worker)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Our own warnings (a fallback taken, a setting changed) as one line; others as Python prints them."""
    if issubclass(category, AigcWarning):
        errors.print("[bold yellow]warning:[/] " + escape(str(message)), highlight=False, soft_wrap=True)
    else:
        _python_warning(message, category, filename, lineno, file, line)


_python_warning = warnings.showwarning


def main() -> None:
    warnings.showwarning = _show_warning
    try:
        app()
    except AigcError as error:
        errors.print("[bold red]error:[/] " + escape(str(error)), highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
