"""The Python API, mirroring the CLI: `train`, `load`, and what they take and return."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Sequence

from aigc import checkpoint as ckpt
from aigc.config import RunConfig, apply_overrides, load_config
from aigc.errors import ConfigError
from aigc.training.callbacks import Callback, default_callbacks
from aigc.loading import LoadedModel, RunInfo, build_model  # noqa: F401  (re-exported)
from aigc.safe_loading import load  # noqa: F401  (re-exported: aigc.load, with the default safety policy)
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
    config, run_dir, _ = _resolve(preset_or_config, overrides, out, max_steps, resume)
    return config, run_dir


def _resolve(preset_or_config, overrides, out, max_steps, resume) -> tuple[RunConfig, Path, Path | None]:
    """(config, run folder, checkpoint to resume from: None to start at step 0)."""
    extra = list(overrides) + ([f"train.max_steps={max_steps}"] if max_steps is not None else [])
    if resume is not None:
        if preset_or_config is not None:
            raise ConfigError("--resume continues the run's own config", field="PRESET", fix="leave the preset out; change settings with --set")
        run_dir, checkpoint = _resume_target(Path(resume))
        if checkpoint is None:  # the earlier attempt died before its first checkpoint: its config.toml
            return load_config(str(run_dir / "config.toml"), extra), run_dir, None
        sidecar = ckpt.read_sidecar(checkpoint)
        return RunConfig.from_dict(apply_overrides(sidecar["config"], extra)), run_dir, checkpoint
    if preset_or_config is None:
        raise ConfigError("missing", field="PRESET", fix="name a preset (`aigc models list`) or a .toml file, or --resume RUN_DIR")
    if isinstance(preset_or_config, RunConfig):
        config = preset_or_config.replace(extra) if extra else preset_or_config
        name = config.family
    else:
        config = load_config(preset_or_config, extra)
        name = preset_or_config
    run_dir = Path(out) if out is not None else default_run_dir(name)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"{run_dir} is a file, not a folder", field="--out", fix="choose a new folder for the run")
    return config, run_dir, None


def _resume_target(path: Path) -> tuple[Path, Path | None]:
    """--resume takes a run folder, its checkpoints folder or one checkpoint of it (RUN/checkpoints/step-N,
    where error messages point): (the run folder, the checkpoint to continue from)."""
    from aigc.training.loop import holds_a_run

    if path.name == "checkpoints" and path.is_dir():
        path = path.parent
    if not (path / ckpt.SIDECAR).is_file() and not path.name == ckpt.SIDECAR and not holds_a_run(path) and (path / "config.toml").is_file():
        return path, None
    checkpoint = ckpt.resolve_checkpoint(path)
    if checkpoint.parent.name != "checkpoints":
        raise ConfigError(
            f"{checkpoint} is not a checkpoint inside a run folder (RUN/checkpoints/step-N)",
            field="--resume", fix="resume the run folder that `aigc train --out` made, or one of its checkpoints",
        )
    return checkpoint.parent.parent, checkpoint


def training_callbacks(config: RunConfig, run_dir: str | Path, extra: Sequence[Callback] = ()) -> list[Callback]:
    """What `aigc train` runs: the config's default callbacks, with the sample-quality scorer from the
    metrics package when `train.eval_metrics` asks for it, then `extra`."""
    train = config.train
    scorers = []
    if train.eval_metrics:
        from aigc.metrics.callback import SampleQuality

        scorers.append(SampleQuality(train.eval_metrics, every=train.eval_metrics_every, num_samples=train.eval_samples, feature_network=train.eval_feature_network))
    return default_callbacks(config, Path(run_dir), scorers=scorers) + list(extra)


def train(
    preset_or_config: str | RunConfig | None = None,
    *,
    overrides: Sequence[str] = (),
    out: str | Path | None = None,
    max_steps: int | None = None,
    resume: str | Path | None = None,
    callbacks: Sequence[Callback] = (),
) -> TrainResult:
    """Train a preset, a TOML file or a RunConfig; or continue a run with `resume=RUN_DIR` (or one of its
    checkpoints, RUN/checkpoints/step-N). `callbacks` run after the default ones.

    >>> result = aigc.train("dcgan-mnist", overrides=["train.max_minutes=2"], out="runs/dcgan")
    """
    config, run_dir, checkpoint = _resolve(preset_or_config, overrides, out, max_steps, resume)
    resume_from = checkpoint if checkpoint is not None else resume is not None
    return fit(config, run_dir, resume=resume_from, callbacks=training_callbacks(config, run_dir, callbacks))
