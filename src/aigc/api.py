"""The Python API, mirroring the CLI: `train`, `load`, and what they take and return."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Sequence

from aigc import checkpoint as ckpt
from aigc.config import RunConfig, apply_overrides, load_config
from aigc.errors import ConfigError
from aigc.training.callbacks import Callback
from aigc.loading import LoadedModel, RunInfo, build_model, load  # noqa: F401  (re-exported: aigc.load)
from aigc.training.loop import TrainResult, fit


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
