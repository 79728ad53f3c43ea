"""The Python API, mirroring the CLI: `train`, `load`, and what they take and return."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Sequence

import torch

from aigc import checkpoint as ckpt
from aigc.config import RunConfig, apply_overrides, load_config
from aigc.errors import CheckpointError, ConfigError
from aigc.training.callbacks import Callback
from aigc.training.loop import TrainResult, build_model, fit


def default_run_dir(name: str) -> Path:
    return Path("runs") / f"{Path(name).stem}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def resolve_run(
    preset_or_config: str | RunConfig | None = None,
    *,
    overrides: Sequence[str] = (),
    out: str | Path | None = None,
    max_steps: int | None = None,
    resume: str | Path | None = None,
) -> tuple[RunConfig, Path]:
    """The validated config and run folder that `train` would use (the CLI prints them too)."""
    extra = list(overrides) + ([f"train.max_steps={max_steps}"] if max_steps is not None else [])
    if resume is not None:
        run_dir = Path(resume)
        sidecar = ckpt.read_sidecar(ckpt.resolve_checkpoint(run_dir))
        if preset_or_config is not None:
            raise ConfigError("--resume continues the run's own config", field="PRESET", fix="leave the preset out; change settings with --set")
        config = RunConfig.from_dict(apply_overrides(sidecar["config"], extra))
        return config, run_dir
    if preset_or_config is None:
        raise ConfigError("missing", field="PRESET", fix="name a preset (`aigc models list`) or a .toml file, or --resume RUN_DIR")
    if isinstance(preset_or_config, RunConfig):
        config = preset_or_config.replace(extra) if extra else preset_or_config
        name = config.family
    else:
        config = load_config(preset_or_config, extra)
        name = preset_or_config
    return config, Path(out) if out is not None else default_run_dir(name)


def train(
    preset_or_config: str | RunConfig | None = None,
    *,
    overrides: Sequence[str] = (),
    out: str | Path | None = None,
    max_steps: int | None = None,
    resume: str | Path | None = None,
    callbacks: Sequence[Callback] = (),
) -> TrainResult:
    """Train a preset, a TOML file or a RunConfig; or continue a run with `resume=RUN_DIR`.

    >>> result = aigc.train("dcgan-mnist", overrides=["train.max_minutes=2"], out="runs/dcgan")
    """
    config, run_dir = resolve_run(preset_or_config, overrides=overrides, out=out, max_steps=max_steps, resume=resume)
    return fit(config, run_dir, resume=resume is not None, callbacks=callbacks)


def load(path: str | Path, *, device: str = "cpu", weights: str = "auto") -> torch.nn.Module:
    """A trained model from a run folder or checkpoint, in eval mode, ready for `generate`.

    `path` may also be the name of a model in the zoo (`aigc models list`), e.g. "dcgan-mnist".
    weights: "auto" (EMA weights when the run kept them), "ema" or "model".
    """
    from aigc import zoo

    checkpoint = ckpt.resolve_checkpoint(zoo.resolve(path))
    sidecar = ckpt.read_sidecar(checkpoint)
    try:
        config = RunConfig.from_dict(sidecar["config"])
    except ConfigError as error:
        raise CheckpointError(f"the config in {checkpoint} no longer validates: {error}") from None
    model = build_model(config)
    files = sidecar.get("files", {})
    if weights == "auto":
        weights = "ema" if "ema.safetensors" in files else "model"
    if f"{weights}.safetensors" not in files:
        raise CheckpointError(f"{checkpoint} has no {weights} weights", field="weights", fix=f"use one of: {', '.join(sorted(f.split('.')[0] for f in files if f != 'state.safetensors'))}")
    tensors = ckpt.read_tensors(checkpoint, f"{weights}.safetensors", sidecar)
    ckpt.load_weights(model, tensors, source=str(checkpoint), left_out=tuple(sidecar.get("left_out", ())))
    model.to(device).eval()
    model.run_config = config
    model.provenance = {
        "model": _model_name(config.family, path, checkpoint),
        "checkpoint_sha256": files[f"{weights}.safetensors"][:16],
        "weights": weights,
        "step": sidecar.get("step"),
    }
    return model


def _model_name(family: str, requested: str | Path, checkpoint: Path) -> str:
    """How artifacts name their model: the zoo name, or family:run/checkpoint."""
    from aigc import zoo

    entry = zoo.get_entry(str(requested))
    if entry is not None and not Path(requested).exists():
        return f"{family}:zoo/{entry.name}"
    return f"{family}:{checkpoint.parent.parent.name}/{checkpoint.name}"
