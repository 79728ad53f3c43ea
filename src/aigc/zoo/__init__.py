"""The model zoo: small checkpoints trained by this project, shipped inside the package, loaded by name.

    aigc.load("dcgan-mnist")            # offline, no training needed
    aigc models list                     # shows the zoo beside families and presets
    aigc models retrain dcgan-mnist      # trains it again with its recorded command and re-exports it

Each entry is a weights-only checkpoint folder (`checkpoint.json` + `ema.safetensors` or
`model.safetensors`, sha256-checked on load, without the weights only training uses: a GAN's discriminator) and a record in `manifest.json`: the preset and overrides it
was trained with, steps, minutes, metrics and the command that reproduces it.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aigc import checkpoint as ckpt
from aigc.errors import CheckpointError
from aigc.files import atomic_write_text

ZOO_DIR = Path(__file__).parent
MANIFEST = ZOO_DIR / "manifest.json"


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


def export(run_dir: str | Path, name: str, *, preset: str, overrides: list[str], description: str = "", minutes: float = 0.0, zoo_dir: Path = ZOO_DIR) -> ZooEntry:
    """Copy a run's latest weights (EMA when present) into a weights-only checkpoint in the zoo."""
    source = ckpt.resolve_checkpoint(run_dir)
    sidecar = ckpt.read_sidecar(source)
    stem = "ema" if "ema.safetensors" in sidecar.get("files", {}) else "model"
    tensors = ckpt.read_tensors(source, f"{stem}.safetensors", sidecar)
    kept = {k: sidecar[k] for k in ("family", "modality", "step", "config", "metrics", "data", "world_size", "stop_reason") if k in sidecar}
    # A zoo model only generates: weights the family marks training-only (a GAN's discriminator) stay out.
    from aigc.registry import get_model

    left_out = list(getattr(get_model(sidecar["family"]).model_class, "training_only", ()))
    if left_out:
        tensors = {k: v for k, v in tensors.items() if not k.startswith(tuple(left_out))}
        kept["left_out"] = left_out
    kept["exported_from"] = {"run": str(Path(run_dir)), "checkpoint": source.name, "versions": sidecar.get("versions", {})}
    folder = ckpt.save_checkpoint(zoo_dir / name / "weights", weights={stem: tensors}, training_state=None, sidecar=kept)
    entry = ZooEntry(
        name=name,
        preset=preset,
        family=sidecar["family"],
        modality=sidecar.get("modality", "image"),
        description=description,
        overrides=list(overrides),
        steps=int(sidecar["step"]),
        minutes=round(minutes, 2),
        metrics={k: round(v, 4) for k, v in sidecar.get("metrics", {}).items() if isinstance(v, (int, float))},
        weights_sha256=ckpt.read_sidecar(folder)["files"][f"{stem}.safetensors"],
    )
    manifest_path = zoo_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.is_file() else {}
    manifest[name] = asdict(entry)
    atomic_write_text(manifest_path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return entry


def resolve(name_or_path: str | Path) -> Path:
    """A zoo name becomes its checkpoint folder; anything else is returned as a path."""
    path = Path(name_or_path)
    if path.exists():
        return path
    entry = get_entry(str(name_or_path))
    if entry is None:
        return path
    if not (entry.path / "weights" / ckpt.SIDECAR).is_file():
        raise CheckpointError(f"zoo entry {entry.name!r} has no weights at {entry.path}", fix=f"retrain it: aigc models retrain {entry.name}")
    return entry.path / "weights"
