"""The model zoo: small checkpoints trained by this project, shipped inside the package, loaded by name.

    aigc.load("dcgan-mnist")            # offline, no training needed
    aigc models list                     # shows the zoo beside families and presets
    aigc models retrain dcgan-mnist      # trains it again with its recorded command and re-exports it

Each entry is a weights-only checkpoint folder (`checkpoint.json` + `ema.safetensors` or
`model.safetensors`, sha256-checked on load) and a record in `manifest.json`: the preset and overrides it
was trained with, steps, minutes, metrics, the data it learnt from and that data's licence, and the
command that reproduces it. A text model's tokenizer is part of its config, so it travels in
`checkpoint.json`. To keep the package small an export leaves out
- the weights only training uses (a GAN's discriminator),
- second copies of tied weights (a GPT's output layer is its token embedding: loading the embedding fills both),
and may store the weights in float16 (`precision`; loading casts them back to the model's float32).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from aigc import checkpoint as ckpt
from aigc.config import RunConfig
from aigc.errors import CheckpointError, ConfigError
from aigc.files import atomic_write_text

ZOO_DIR = Path(__file__).parent
MANIFEST = ZOO_DIR / "manifest.json"
CARDS = ZOO_DIR / "cards.toml"  # each entry's intended use and limitations (the rest of its card is the manifest's)


@dataclass(frozen=True)
class ZooEntry:
    name: str
    preset: str
    family: str
    modality: str
    description: str
    overrides: list[str] = field(default_factory=list)
    steps: int = 0
    minutes: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)
    weights_sha256: str = ""
    data_source: str = ""  # where the training data came from (package and version)
    license: str = ""  # the training data's licence
    precision: str = "float32"  # how the weights are stored: float32 or float16

    @property
    def path(self) -> Path:
        return ZOO_DIR / self.name

    @property
    def command(self) -> str:
        """The command that trains this entry again (then `aigc models export RUN NAME`)."""
        sets = " ".join(f"--set {shlex.quote(item)}" for item in self.overrides)
        return f"aigc train {self.preset} {sets}".strip()


def _read_manifest() -> dict[str, dict[str, Any]]:
    if not MANIFEST.is_file():
        return {}
    return json.loads(MANIFEST.read_text(encoding="utf-8"))


def list_entries() -> list[ZooEntry]:
    return [ZooEntry(**record) for _, record in sorted(_read_manifest().items())]


def get_entry(name: str) -> ZooEntry | None:
    record = _read_manifest().get(name)
    return ZooEntry(**record) if record is not None else None


def model_card(entry: ZooEntry) -> dict[str, Any]:
    """The entry's model card: data and licence, training budget, metrics, intended use and limitations
    (from cards.toml, or its modality's default there). The safety settings that apply to its outputs
    come from the policy, not from here (aigc.safety.cards.safety_notes)."""
    import tomllib

    cards = tomllib.loads(CARDS.read_text(encoding="utf-8")) if CARDS.is_file() else {}
    defaults = cards.get("default", {})
    written = cards.get(entry.name) or defaults.get(entry.modality) or defaults.get(entry.modality.split("-")[0]) or defaults.get("any", {})
    return {
        "name": entry.name, "family": entry.family, "modality": entry.modality, "description": entry.description,
        "data": entry.data_source, "license": entry.license,
        "training": {"preset": entry.preset, "command": entry.command, "steps": entry.steps, "cpu_minutes": entry.minutes, "precision": entry.precision, "weights_sha256": entry.weights_sha256},
        "metrics": dict(entry.metrics),
        "intended_use": written.get("intended_use", ""),
        "limitations": list(written.get("limitations", [])),
        "card_written": entry.name in cards,  # False: the modality's default text stands in
    }


PRECISIONS = {"float32": torch.float32, "float16": torch.float16}


def export(
    run_dir: str | Path,
    name: str,
    *,
    preset: str,
    overrides: list[str],
    description: str = "",
    minutes: float = 0.0,
    data_source: str | None = None,
    license: str | None = None,
    precision: str | None = None,
    metrics: dict[str, float] | None = None,
    zoo_dir: Path = ZOO_DIR,
) -> ZooEntry:
    """Copy a run's latest weights (EMA when present) into a weights-only checkpoint in the zoo.

    An empty description and data_source, license and precision left as None keep what the manifest
    already says for `name` (so `aigc models retrain` and a re-export keep them); `metrics` are measured
    figures added to the training logs'."""
    manifest_path = zoo_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.is_file() else {}
    previous = manifest.get(name, {})
    precision = precision or previous.get("precision", "float32")
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}", field="precision", fix=f"use one of: {', '.join(PRECISIONS)}")
    source = ckpt.resolve_checkpoint(run_dir)
    sidecar = ckpt.read_sidecar(source)
    stem = "ema" if "ema.safetensors" in sidecar.get("files", {}) else "model"
    tensors = ckpt.read_weights(source, stem, sidecar)  # a LoRA run's adapters merged in
    kept = {k: sidecar[k] for k in ("family", "modality", "step", "config", "metrics", "data", "world_size", "stop_reason", "init_from") if k in sidecar}
    # A zoo model only generates: weights the family marks training-only (a GAN's discriminator) stay out,
    # and so do second copies of tied weights (loading the first fills both).
    from aigc.registry import get_model

    model_class = get_model(sidecar["family"]).model_class
    training_only = list(getattr(model_class, "training_only", ()))
    tied = tied_keys(model_class(RunConfig.from_dict(sidecar["config"]).model))
    left_out = training_only + tied
    if left_out:
        tensors = {k: v for k, v in tensors.items() if not k.startswith(tuple(training_only)) and k not in tied}
        kept["left_out"] = left_out
    if tied:
        kept["tied"] = tied
    if precision != "float32":
        tensors = {k: v.to(PRECISIONS[precision]) if v.is_floating_point() else v for k, v in tensors.items()}
        kept["precision"] = precision
    kept["exported_from"] = {"run": str(Path(run_dir)), "checkpoint": source.name, "versions": sidecar.get("versions", {})}
    folder = ckpt.save_checkpoint(zoo_dir / name / "weights", weights={stem: tensors}, training_state=None, sidecar=kept)
    entry = ZooEntry(
        name=name,
        preset=preset,
        family=sidecar["family"],
        modality=sidecar.get("modality", "image"),
        description=description or previous.get("description", ""),
        overrides=list(overrides),
        steps=int(sidecar["step"]),
        minutes=round(minutes, 2),
        metrics={k: round(v, 4) for k, v in {**sidecar.get("metrics", {}), **(metrics or {})}.items() if isinstance(v, (int, float))},
        weights_sha256=ckpt.read_sidecar(folder)["files"][f"{stem}.safetensors"],
        data_source=previous.get("data_source", "") if data_source is None else data_source,
        license=previous.get("license", "") if license is None else license,
        precision=precision,
    )
    manifest[name] = asdict(entry)
    atomic_write_text(manifest_path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return entry


def tied_keys(module: torch.nn.Module) -> list[str]:
    """State-dict keys whose tensor is an earlier key's (a GPT's output layer is its token embedding)."""
    seen: set[tuple] = set()
    tied = []
    for key, value in module.state_dict(keep_vars=True).items():
        identity = (value.data_ptr(), value.shape, value.stride())
        if identity in seen and value.numel() > 0:
            tied.append(key)
        seen.add(identity)
    return tied


def resolve(name_or_path: str | Path) -> Path:
    """A zoo name becomes its checkpoint folder; an existing path is returned as it is; anything else is
    an error that lists the zoo (a mistyped zoo name and a missing run folder look alike)."""
    path = Path(name_or_path)
    if path.exists():
        return path
    entry = get_entry(str(name_or_path))
    if entry is None:
        names = ", ".join(e.name for e in list_entries()) or "none installed"
        raise CheckpointError(
            f"{path} does not exist, and no zoo model is called {str(name_or_path)!r}",
            fix=f"use a zoo model ({names}; `aigc models list` describes them), "
            "a run folder from `aigc train --out`, or a checkpoint folder",
        )
    if not (entry.path / "weights" / ckpt.SIDECAR).is_file():
        raise CheckpointError(f"zoo entry {entry.name!r} has no weights at {entry.path}", fix=f"retrain it: aigc models retrain {entry.name}")
    return entry.path / "weights"
