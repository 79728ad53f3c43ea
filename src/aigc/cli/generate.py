"""`aigc generate RUN` — make images, text or sound with a trained model, through the one generation path.

Each family says what it accepts (its request class): the common options below, and any other field of
that class as `--param key=value` (TOML values, validated with the same messages), so a new family needs no
new CLI flag. Files are never overwritten without `--force`, and the command says where each one went.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console

from aigc.errors import AigcError

console = Console()
errors = Console(stderr=True)


def generate_command(
    run: Path = typer.Argument(..., help="A run folder, a checkpoint folder, or a zoo model name (`aigc models list`)."),
    count: Optional[int] = typer.Option(None, "-n", "--count", help="Number of samples (default: the model's, e.g. 16 images or 1 text)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Sample i uses seed+i; the same seed gives identical files (default: random, printed)."),
    label: list[int] = typer.Option([], "--label", help="Class of the samples (conditional models); repeat for one per sample."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output file (default RUN/generated/seed-S.png, or ./generated/NAME/ for a zoo model)."),
    each: bool = typer.Option(False, "--each", help="Also write one file per sample next to the grid."),
    force: bool = typer.Option(False, "--force", help="Replace files that already exist."),
    weights: str = typer.Option("auto", "--weights", help="auto (EMA when present), ema or model."),
    prompt: Optional[str] = typer.Option(None, "--prompt", help="Text models: text to continue (LM) or to answer (seq2seq). Text-to-image: what to draw, English or Chinese."),
    guidance: Optional[float] = typer.Option(None, "--guidance", help="Diffusion: classifier-free guidance scale, 0..30 (1 = none; default from the model, 3)."),
    sampler: Optional[str] = typer.Option(None, "--sampler", help="Diffusion: dpmpp-2m (DPM-Solver++(2M), deterministic; the default of new runs), ddim (deterministic) or ddpm (stochastic). Default: the model's."),
    sample_steps: Optional[int] = typer.Option(None, "--sample-steps", help="Diffusion: denoising steps (dpmpp-2m: 10-15, DDIM: 10-50 give images; default: the model's, 15 for new runs)."),
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
    stream: bool = typer.Option(False, "--stream", help="Text: print the text piece by piece as it is generated."),
    image: Optional[str] = typer.Option(None, "--image", help="Models that read an image (a captioner, image-to-image translation): its file."),
    param: list[str] = typer.Option([], "--param", help="Any other request field of this model: --param key=value (TOML value; repeatable)."),
    backend: str = typer.Option("torch", "--backend", help="torch, or onnxruntime: the run's ONNX export of its GAN generator, diffusion U-Net or GPT (prefill + KV-cache decode graphs; aigc optimize RUN --out RUN-onnx --export onnx)."),
    compile_: bool = typer.Option(False, "--compile", help="torch.compile the GAN generator or diffusion U-Net where benchmarks showed it pays (says so, and stays eager, where not); the first request compiles (tens of seconds)."),
) -> None:
    """Generate with a trained model. Images: a PNG grid carrying model, seed, label and parameters.
    Text: printed, and saved as a .txt file with a .json record of the prompt, seeds and settings."""
    from aigc.generation import pipeline
    from aigc.loading import load
    from aigc.safety import default_policy

    model = load(run, weights=weights)
    if backend != "torch":
        from aigc.optimize.export import with_backend

        if compile_:
            raise AigcError("--compile compiles the PyTorch networks; --backend onnxruntime runs none", field="--compile",
                            fix="use one of --compile and --backend onnxruntime")
        model = with_backend(model, backend)
    if compile_:
        from aigc.optimize.compile import with_compile

        model = with_compile(model)
    default_folder = Path(run) / "generated" if Path(run).is_dir() else Path("generated") / str(run)  # a zoo name
    if reconstruct is not None:
        target = _checked_target(out or default_folder / f"reconstruct-{reconstruct}.png", force)
        batch = pipeline.record_provenance(_reconstruct(model, reconstruct), model.info)
        console.print(f"wrote {batch.save_grid(target, columns=reconstruct)}")
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
        "sample_steps": sample_steps, "interpolate": pair, "image": image,
    }
    values = {key: value for key, value in given.items() if value is not None}
    values.update(_params(param, model.request_class, set(values)))
    request = pipeline.validate(model.module, values)
    stem = f"interpolate-{pair[0]}-{pair[1]}" if pair is not None else f"seed-{request.seed}"
    modality = _modality(model)
    suffix = {"text": ".txt", "audio": ".wav"}.get(modality, ".png")
    target = _checked_target(out or default_folder / f"{stem}{suffix}", force)
    if seed is None:
        errors.print(f"seed: {request.seed} (random; --seed {request.seed} makes these again)", highlight=False)
    if stream:
        if not pipeline.can_stream(model.module, request):
            raise AigcError("--stream prints one sampled text as it is made", field="--stream", fix="use it with a text model, -n 1 and no --beams; or leave --stream out")
        streamed = pipeline.stream(model.module, request, info=model.info, policy=default_policy())
        for piece in streamed:
            sys.stdout.write(piece)
            sys.stdout.flush()
        sys.stdout.write("\n")
        artifact = streamed.artifact
    else:
        with _progress_bar() as progress:
            artifact = model.generate(request, policy=default_policy(), progress=progress)
        if modality == "text":
            separator = "\n" + "-" * 40 + "\n"
            print(separator.join(artifact.texts))  # the text on stdout; where it was saved on stderr
    if pair is not None and modality == "image":
        artifact.save_grid(target, columns=len(artifact))  # a walk reads left to right, in one row
    else:
        artifact.save(target)
    report = errors if modality == "text" else console  # keep stdout the generated text alone
    report.print(f"wrote {target}", highlight=False)
    if each:
        for file in artifact.files():
            _checked_target(target.parent / f"{target.stem}-seed{file.seed}{file.suffix}", force)
        for path in artifact.save_each(target.parent, stem=target.stem):
            report.print(f"wrote {path}", highlight=False)


def _modality(model) -> str:
    from aigc.registry import get_model

    modality = get_model(model.info.family).modality
    return "text" if modality == "image-to-text" else modality  # what the command writes: a captioner's text


def _checked_target(path: Path, force: bool) -> Path:
    """Refuse to write where a file cannot or should not go, before any work is done."""
    path = Path(path)
    if path.exists() or path.is_symlink():
        if path.is_dir():
            raise AigcError(f"{path} is a folder", field="--out", fix=f"name a file inside it, e.g. --out {path / ('seed-0' + (path.suffix or '.png'))}")
        if not path.is_file():
            raise AigcError(f"{path} is not a regular file (a device, pipe or socket)", field="--out", fix="name a new file path")
        if not force:
            raise AigcError(f"{path} already exists", field="--out", fix="add --force to replace it, or choose another --out (or --seed)")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise AigcError(f"{parent} is a file, so {path} cannot be created", field="--out", fix="choose a path whose folders are folders")
            break
    return path


def _params(items: list[str], request_class: type, given: set[str]) -> dict[str, Any]:
    """`--param key=value` pairs, for fields of the model's request class that no common option sets."""
    from aigc.config import parse_value

    known = [name for name in request_class.model_fields]
    values: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise AigcError(f"expected key=value, got {item!r}", field="--param", fix="e.g. --param sample_steps=20")
        if key not in request_class.model_fields:
            raise AigcError(f"this model's requests have no field {key!r}", field="--param", fix=f"valid fields: {', '.join(known)}")
        if key in given or key in values:
            raise AigcError(f"{key} is given twice", field="--param", fix=f"give {key} once")
        values[key] = parse_value(text)
    return values


class _progress_bar:
    """A progress bar on stderr for work that reports steps (diffusion sampling); silent for quick calls."""

    def __enter__(self):
        self._bar = None
        return self._update

    def _update(self, done: int, total: int, preview=None) -> None:
        if self._bar is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

            self._bar = Progress("generating", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=errors, transient=True)
            self._bar.start()
            self._task = self._bar.add_task("steps", total=total)
        self._bar.update(self._task, completed=done, total=total)

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()


def _seed_pair(text: str) -> tuple[int, int]:
    parts = text.split(",")
    if len(parts) != 2 or not all(part.strip().isdigit() for part in parts):
        raise AigcError(f"expected two seeds A,B, got {text!r}", field="--interpolate", fix="e.g. --interpolate 3,7 --steps 8")
    return int(parts[0]), int(parts[1])


def _reconstruct(model, count: int):
    """The first `count` images of the run's test split (else validation split), and their reconstructions."""
    import torch

    from aigc.data import load_dataset

    module, config = model.module, model.info.config
    if not hasattr(module, "reconstruct"):
        raise AigcError(f"{config.family} models do not encode images", field="--reconstruct", fix="use a vae or cvae run")
    if not 1 <= count <= 64:
        raise AigcError(f"{count} images is outside 1..64", field="--reconstruct", fix="e.g. --reconstruct 8")
    data = load_dataset(config.data, config.model)
    split = data.test if data.test is not None else data.val
    if split is None or len(split) == 0:
        raise AigcError(f"dataset {config.data.name} has no test or validation split", field="--reconstruct")
    batch = split.get_batch(torch.arange(min(count, len(split))))
    labels = batch["labels"].tolist() if module.num_classes is not None else None
    return module.reconstruct(batch["images"], labels=labels)
