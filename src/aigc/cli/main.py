"""`aigc train | generate | models | data` — thin wrappers over the Python API.

Every user mistake is an AigcError: printed as one clear message (no traceback) with exit status 2.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from aigc.errors import AigcError

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
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the run in this folder from its latest checkpoint."),
) -> None:
    """Train a model; checkpoints, metrics.jsonl and sample grids go to the run folder."""
    from aigc.api import resolve_run
    from aigc.training.loop import fit

    config, run_dir = resolve_run(preset, overrides=set_, out=out, max_steps=max_steps, resume=resume)
    result = fit(config, run_dir, resume=resume is not None)
    if result.checkpoint is not None:  # only rank 0 writes, and only rank 0 reports
        console.print(f"[bold]{result.stop_reason}[/] at step {result.step}")
        console.print(f"checkpoint: {result.checkpoint}")
        console.print(f"samples:    {run_dir / 'samples'}")


@app.command()
def generate(
    run: Path = typer.Argument(..., help="A run folder, a checkpoint folder, or a zoo model name."),
    count: Optional[int] = typer.Option(None, "-n", "--count", help="Number of samples (default 16)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Sample i uses seed+i; the same seed gives identical files (default 0)."),
    label: list[int] = typer.Option([], "--label", help="Class of the images (conditional models); repeat for one per image."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output path (default RUN/generated/seed-S.png)."),
    each: bool = typer.Option(False, "--each", help="Also write one file per sample next to the grid."),
    weights: str = typer.Option("auto", "--weights", help="auto (EMA when present), ema or model."),
    prompt: Optional[str] = typer.Option(None, "--prompt", help="Text models: text to continue or answer. Text-to-image (t2i-*) models: the image to draw, in English or Chinese."),
    guidance: Optional[float] = typer.Option(None, "--guidance", help="Diffusion: classifier-free guidance scale, 0..30 (1 = none; default from the model, 3)."),
    sampler: Optional[str] = typer.Option(None, "--sampler", help="Diffusion: ddim (default, deterministic) or ddpm."),
    sample_steps: Optional[int] = typer.Option(None, "--sample-steps", help="Diffusion: denoising steps (DDIM: 10-50 give images; default 50)."),
    interpolate: Optional[str] = typer.Option(None, "--interpolate", help="A,B: walk the latent space from seed A's noise to seed B's (VAE, GAN, diffusion)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="With --interpolate: the number of images along the walk (default 8)."),
    reconstruct: Optional[int] = typer.Option(None, "--reconstruct", help="VAE: encode and decode the first N test images (originals above, reconstructions below)."),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", help="Text: new tokens at most (default 200)."),
    min_tokens: Optional[int] = typer.Option(None, "--min-tokens", help="Text: new tokens at least (<eos> is held back until then)."),
    temperature: Optional[float] = typer.Option(None, "--temperature", help="Text: 0 = greedy; higher = more varied (default 1)."),
    top_k: Optional[int] = typer.Option(None, "--top-k", help="Text: sample among the k most likely tokens."),
    top_p: Optional[float] = typer.Option(None, "--top-p", help="Text: nucleus sampling, the smallest set with probability >= p."),
    repetition_penalty: Optional[float] = typer.Option(None, "--repetition-penalty", help="Text: > 1 discourages repeats."),
    beams: Optional[int] = typer.Option(None, "--beams", help="Text: beam search with this many beams."),
    length_penalty: Optional[float] = typer.Option(None, "--length-penalty", help="Text, beam search: rank beams by score / length**P (default 1; 0 = raw log-probability)."),
    stop: list[str] = typer.Option([], "--stop", help="Text: stop at this string (repeatable)."),
    stream: bool = typer.Option(False, "--stream", help="Text: print the text as it is generated."),
) -> None:
    """Generate with a trained model. Images: a PNG grid carrying model, seed, label and parameters.
    Text: a .txt file and a .json record of the prompt, seeds and settings."""
    from aigc.api import load

    model = load(run, weights=weights)
    default_folder = Path(run) / "generated" if Path(run).is_dir() else Path("generated") / str(run)  # a zoo name
    if reconstruct is not None:
        target = out or default_folder / f"reconstruct-{reconstruct}.png"
        console.print(f"wrote {_reconstruct(model, reconstruct).save_grid(target, columns=reconstruct)}")
        return
    if steps is not None and interpolate is None:
        raise AigcError("--steps counts the images of an interpolation", field="--steps", fix="add --interpolate A,B, or use -n for a number of samples")
    pair = _seed_pair(interpolate) if interpolate is not None else None
    if pair is not None:
        count = steps if steps is not None else 8
    given = {
        "count": count, "seed": seed, "labels": label or None, "prompt": prompt, "max_tokens": max_tokens, "min_tokens": min_tokens,
        "temperature": temperature, "top_k": top_k, "top_p": top_p, "repetition_penalty": repetition_penalty,
        "num_beams": beams, "length_penalty": length_penalty, "stop": stop or None, "guidance": guidance, "sampler": sampler,
        "sample_steps": sample_steps, "interpolate": pair,
    }
    # Each family says what it accepts (its request class); an option it does not take is an error.
    request = _validated(model.request_class, **{k: v for k, v in given.items() if v is not None})
    if stream:
        from aigc.cli.text import stream_text

        artifact = stream_text(model, request)
    else:
        artifact = model.generate(request)
    stem = f"interpolate-{pair[0]}-{pair[1]}" if pair is not None else f"seed-{request.seed}"
    target = out or default_folder / f"{stem}{artifact.suffix}"
    if pair is not None:
        artifact.save_grid(target, columns=len(artifact))  # a walk reads left to right, in one row
    else:
        artifact.save(target)
    (errors if stream else console).print(f"wrote {target}")  # keep stdout the generated text alone
    if each:
        for path in artifact.save_each(target.parent, stem=target.stem):
            console.print(f"wrote {path}")


def _seed_pair(text: str) -> tuple[int, int]:
    parts = text.split(",")
    if len(parts) != 2 or not all(part.strip().isdigit() for part in parts):
        raise AigcError(f"expected two seeds A,B, got {text!r}", field="--interpolate", fix="e.g. --interpolate 3,7 --steps 8")
    return int(parts[0]), int(parts[1])


def _reconstruct(model, count: int):
    """The first `count` images of the run's test split (else validation split), and their reconstructions."""
    import torch

    from aigc.data import load_dataset

    if not hasattr(model, "reconstruct"):
        raise AigcError(f"{model.run_config.family} models do not encode images", field="--reconstruct", fix="use a vae or cvae run")
    if not 1 <= count <= 64:
        raise AigcError(f"{count} images is outside 1..64", field="--reconstruct", fix="e.g. --reconstruct 8")
    config = model.run_config
    data = load_dataset(config.data, config.model)
    split = data.test if data.test is not None else data.val
    if split is None or len(split) == 0:
        raise AigcError(f"dataset {config.data.name} has no test or validation split", field="--reconstruct")
    batch = split.get_batch(torch.arange(min(count, len(split))))
    labels = batch["labels"].tolist() if model.num_classes is not None else None
    return model.reconstruct(batch["images"], labels=labels)


def _validated(kind, **values):
    from pydantic import ValidationError

    from aigc.config import _explain

    try:
        return kind.model_validate(values)
    except ValidationError as error:
        raise _explain(error, kind, "request") from None


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
    table = Table("family", "modality", "description", title="Model families")
    for family in families:
        table.add_row(family["name"], family["modality"], family["description"])
    console.print(table)
    table = Table("preset", "family", "dataset", "description", title="Presets (aigc train PRESET)")
    for preset in presets:
        table.add_row(preset["name"], preset["family"], preset["dataset"], preset["description"])
    console.print(table)
    table = Table("name", "family", "steps", "minutes", "description", title="Zoo: trained models, offline (aigc generate NAME)")
    for entry in zoo_entries:
        table.add_row(entry["name"], entry["family"], str(entry["steps"]), str(entry["minutes"]), entry["description"])
    console.print(table)


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
    from aigc.api import default_run_dir
    from aigc.config import load_config
    from aigc.errors import ConfigError
    from aigc.training.loop import fit

    entry = zoo.get_entry(name)
    if entry is None:
        raise ConfigError(f"no zoo model {name!r}", fix=f"use one of: {', '.join(e.name for e in zoo.list_entries())}")
    console.print(f"retraining {name}: {entry.command}")
    started = time.perf_counter()
    run_dir = default_run_dir(f"zoo-{name}")
    fit(load_config(entry.preset, entry.overrides), run_dir)
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
    from types import SimpleNamespace

    from aigc.config import DataConfig
    from aigc.data import load_dataset
    from aigc.registry import get_dataset

    spec = get_dataset(name)
    console.print(f"[bold]{spec.name}[/]: {spec.description}\nsource: {spec.source}")
    from aigc.models.text.rnn import RNNConfig
    from aigc.models.text.seq2seq import Seq2SeqConfig

    # What a model would tell the data: image geometry, or a tokenizer and sequence lengths (the families' defaults).
    pairs = Seq2SeqConfig(tokenizer_kind=tokenizer)
    model = SimpleNamespace(
        image_size=image_size, channels=channels, **pairs.model_dump(include={"tokenizer", "tokenizer_kind", "max_vocab", "max_source_length", "max_target_length"}),
        context_length=RNNConfig().context_length,
    )
    bundle = load_dataset(DataConfig(name=name, path=path), model)
    for key, value in bundle.describe().items():
        console.print(f"{key}: {value}")


from aigc.cli.evaluate import eval_command  # noqa: E402
from aigc.cli.text import prepare_command  # noqa: E402
from aigc.studio.cli import studio_app, worker  # noqa: E402

app.command("eval")(eval_command)
data_app.command("prepare")(prepare_command)
app.add_typer(studio_app, name="studio")
app.command("worker", help="Run a studio job worker (Celery on Redis) that takes jobs from the queue.")(worker)


def main() -> None:
    try:
        app()
    except AigcError as error:
        errors.print("[bold red]error:[/] " + escape(str(error)), highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
