"""The one training loop. Every family trains here; a family only provides

    configure_optimizers(optim_config) -> {name: optimizer}
    training_step(batch) -> iterator of (optimizer_name, loss, logs)
    validation_step(batch) -> {metric: tensor}          (optional)
    preview_request() and generate(request)              (for sample grids)

The loop steps each optimizer as soon as its loss arrives (so a GAN's generator loss is computed through
the discriminator that was just updated) and owns everything else: device, bf16 autocast, gradient
clipping, gradient averaging across processes, the learning-rate schedule, logging, evaluation,
checkpoints and exact resume. Extensions are callbacks (training/callbacks.py), not flags.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import tomli_w
import torch

from aigc import checkpoint as ckpt
from aigc.config import RunConfig
from aigc.data import DatasetBundle, load_dataset
from aigc.errors import AigcError, ConfigError
from aigc.loading import build_model
from aigc.registry import get_model
from aigc.seeding import seed_everything
from aigc.training import distributed
from aigc.training.callbacks import EMA, Callback, Checkpointer, EarlyStopping, MetricLogger, Progress, SampleGrids
from aigc.training.optim import learning_rate_factor
from aigc.training.sampler import EpochSampler


class TrainingError(AigcError):
    """Training cannot go on (a loss became NaN, say)."""


@dataclass
class TrainResult:
    run_dir: Path
    checkpoint: Path | None  # the last checkpoint written
    step: int
    stop_reason: str
    metrics: dict[str, float]


@dataclass
class TrainState:
    config: RunConfig
    run_dir: Path
    model: torch.nn.Module
    optimizers: dict[str, torch.optim.Optimizer]
    data: DatasetBundle
    sampler: EpochSampler
    device: torch.device
    dist: distributed.Distributed
    callbacks: list[Callback] = field(default_factory=list)
    step: int = 0
    stop_reason: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    last_checkpoint: Path | None = None
    started: float = field(default_factory=time.perf_counter)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    @property
    def should_stop(self) -> bool:
        return bool(self.stop_reason)

    def request_stop(self, reason: str) -> None:
        self.stop_reason = self.stop_reason or reason

    @property
    def sampling_model(self) -> torch.nn.Module:
        """The EMA weights when training keeps them, else the model itself."""
        for callback in self.callbacks:
            if isinstance(callback, EMA) and callback.averaged is not None:
                return callback.averaged
        return self.model

    def save_checkpoint(self) -> None:
        """Called on every process (RNG states are gathered); only rank 0 writes."""
        own_rng = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            own_rng["cuda"] = torch.cuda.get_rng_state(self.device)
        rng_states = distributed.gather(own_rng, self.dist)
        in_sync = distributed.replicas_identical(self.model, self.dist)
        if not self.dist.is_main:
            return
        weights = {"model": self.model.state_dict()}
        for callback in self.callbacks:
            weights.update(callback.extra_weights())
        training_state = {
            "step": self.step,
            "optimizers": {name: optimizer.state_dict() for name, optimizer in self.optimizers.items()},
            "sampler": self.sampler.state_dict(),
            "rng": rng_states,
            "callbacks": {cb.key: cb.state_dict() for cb in self.callbacks if cb.key},
        }
        sidecar = {
            "family": self.config.family,
            "modality": get_model(self.config.family).modality,
            "step": self.step,
            "config": self.config.to_dict(),
            "metrics": self.metrics,
            "data": {"name": self.config.data.name, **self.data.describe()},
            "world_size": self.dist.world_size,
            "replicas_identical": in_sync,
            "stop_reason": self.stop_reason,
        }
        folder = self.run_dir / "checkpoints" / f"step-{self.step:07d}"
        self.last_checkpoint = ckpt.save_checkpoint(folder, weights=weights, training_state=training_state, sidecar=sidecar)
        _prune_checkpoints(self.run_dir / "checkpoints", self.config.train.keep_checkpoints)


def _prune_checkpoints(folder: Path, keep: int) -> None:
    for old in sorted(folder.glob("step-*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def _fill_from_data(config: RunConfig, data: DatasetBundle) -> None:
    """Model fields a family leaves as None for the data to decide (number of classes, vocabulary, ...)."""
    known = type(config.model).model_fields
    for name, value in data.model_fields().items():
        if name not in known or value is None:
            continue
        current = getattr(config.model, name)
        if current is None:
            setattr(config.model, name, value)
        elif current != value:
            raise ConfigError(
                f"model.{name} is {current!r} but dataset {config.data.name!r} gives {value!r}",
                field=f"model.{name}",
                fix=f"leave model.{name} out to take it from the data",
            )


def _default_callbacks(config: RunConfig, run_dir: Path) -> list[Callback]:
    train = config.train
    callbacks: list[Callback] = []
    if train.ema_decay is not None:
        callbacks.append(EMA(train.ema_decay))
    if train.eval_metrics:  # before the loggers and early stopping, which read the scores it adds
        from aigc.metrics.callback import SampleQuality

        callbacks.append(SampleQuality(train.eval_metrics, every=train.eval_metrics_every, num_samples=train.eval_samples, feature_network=train.eval_feature_network))
    callbacks.append(MetricLogger(run_dir, train.tensorboard))
    if train.early_stopping is not None:
        stop = train.early_stopping
        callbacks.append(EarlyStopping(stop.metric, stop.mode, stop.patience, stop.min_delta))
    callbacks.append(SampleGrids(run_dir, train.sample_every))
    callbacks.append(Checkpointer(train.checkpoint_every))
    if train.progress:
        callbacks.append(Progress(train.max_steps))
    return callbacks


@contextlib.contextmanager
def _stop_on_signals(state: TrainState):
    """SIGINT/SIGTERM finish the current step, save a checkpoint and return; a second SIGINT aborts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(number, frame):
        if state.should_stop and number == signal.SIGINT:
            raise KeyboardInterrupt
        state.request_stop(f"signal {signal.Signals(number).name}")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _autocast(state: TrainState):
    if state.config.train.precision == "bf16":
        return torch.autocast(device_type=state.device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {key: value.to(device, non_blocking=True) for key, value in batch.items()}


def _optimizer_parameters(optimizer: torch.optim.Optimizer) -> list[torch.nn.Parameter]:
    return [p for group in optimizer.param_groups for p in group["params"]]


def _train_step(state: TrainState, batch: dict[str, torch.Tensor], sums: dict[str, torch.Tensor]) -> None:
    factor = learning_rate_factor(state.step, state.config.train)
    for optimizer in state.optimizers.values():
        for group in optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor
    steps = state.model.training_step(batch)
    while True:
        with _autocast(state):  # the family's forward passes run in bf16 when asked; backward outside
            item = next(steps, None)
        if item is None:
            break
        name, loss, logs = item
        if name not in state.optimizers:
            raise TrainingError(f"training_step yielded a loss for unknown optimizer {name!r}; known: {sorted(state.optimizers)}")
        optimizer = state.optimizers[name]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        parameters = _optimizer_parameters(optimizer)
        distributed.average_gradients(parameters, state.dist)
        if state.config.train.grad_clip is not None:
            norm = torch.nn.utils.clip_grad_norm_(parameters, state.config.train.grad_clip)
            logs = {**logs, "grad_norm": norm}
        optimizer.step()
        for key, value in {"loss": loss, **logs}.items():
            metric = f"loss/{name}" if key == "loss" else f"{name}/{key}"
            sums[metric] = sums.get(metric, 0.0) + value.detach().float()
            sums[f"_count/{metric}"] = sums.get(f"_count/{metric}", 0) + 1


def _flush_logs(state: TrainState, sums: dict[str, Any]) -> dict[str, float]:
    logs = {}
    for key, total in sums.items():
        if not key.startswith("_count/"):
            logs[key] = float(total) / sums[f"_count/{key}"]
    for key, value in logs.items():
        if key.startswith("loss/") and not torch.isfinite(torch.tensor(value)):
            raise TrainingError(
                f"{key} became {value} by step {state.step}",
                fix="lower optim.lr, set train.grad_clip, or use precision fp32",
            )
    logs["lr"] = state.config.optim.lr * learning_rate_factor(max(state.step - 1, 0), state.config.train)
    sums.clear()
    return logs


@torch.no_grad()
def evaluate(state: TrainState) -> dict[str, float]:
    """Mean of the family's validation_step over the first `eval_batches` validation batches, with the
    same noise every time (a forked RNG), so that evaluations are comparable step to step."""
    validation = state.data.val
    step_fn = getattr(state.model, "validation_step", None)
    if validation is None or len(validation) == 0 or step_fn is None:
        return {}
    sums: dict[str, float] = {}
    batches = 0
    size = state.config.train.batch_size
    devices = [state.device] if state.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(state.config.train.seed)
        for start in range(0, len(validation), size):
            if batches == state.config.train.eval_batches:
                break
            indices = torch.arange(start, min(start + size, len(validation)))
            with _autocast(state):
                results = step_fn(_to_device(validation.get_batch(indices), state.device))
            for key, value in results.items():
                sums[key] = sums.get(key, 0.0) + float(value)
            batches += 1
    return {f"val/{key}": total / batches for key, total in sums.items()}


def fit(
    config: RunConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
) -> TrainResult:
    """Train `config` into `run_dir`; with resume=True continue from run_dir's latest checkpoint."""
    run_dir = Path(run_dir)
    info, device = distributed.setup(config.train.device)
    try:
        return _fit(config, run_dir, resume, list(callbacks), info, device)
    finally:
        distributed.teardown(info)


def _fit(config, run_dir, resume, extra_callbacks, info, device) -> TrainResult:
    train = config.train
    if train.early_stopping is not None:
        # Sample-quality scores ("eval/...") need evaluation passes but no validation split.
        watches_samples = train.early_stopping.metric.startswith("eval/")
        if train.eval_every == 0 or (config.data.val_fraction == 0 and not watches_samples):
            raise ConfigError(
                "early stopping needs validation passes",
                field="train.early_stopping",
                fix="set train.eval_every > 0 and data.val_fraction > 0 (or watch an eval/ sample score with train.eval_metrics)",
            )
    checkpoint = ckpt.resolve_checkpoint(run_dir) if resume else None
    if not resume and (run_dir / "checkpoints").exists() and any((run_dir / "checkpoints").iterdir()):
        raise ConfigError(f"{run_dir} already holds a run", field="--out", fix=f"resume it with --resume {run_dir}, or choose another --out")

    seed_everything(train.seed)  # the same initial weights on every process
    data = load_dataset(config.data, config.model)
    _fill_from_data(config, data)
    model = build_model(config).to(device)
    distributed.broadcast_module(model, info)
    optimizers = model.configure_optimizers(config.optim)
    for optimizer in optimizers.values():
        for group in optimizer.param_groups:
            group.setdefault("base_lr", group["lr"])
    sampler = EpochSampler(len(data.train), train.batch_size, train.seed, info.rank, info.world_size)
    callbacks = [cb for cb in _default_callbacks(config, run_dir) + extra_callbacks if info.is_main or not cb.main_process_only]
    state = TrainState(config, run_dir, model, optimizers, data, sampler, device, info, callbacks)
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.toml").write_text(tomli_w.dumps(_without_none(config.to_dict())), encoding="utf-8")
    torch.manual_seed(train.seed + 1 + info.rank)  # each process draws its own noise from here on

    for callback in callbacks:
        callback.on_fit_start(state)
    if checkpoint is not None:
        _restore(state, checkpoint)
        for callback in callbacks:
            if isinstance(callback, Checkpointer):
                callback.last_saved = state.step

    model.train()
    sums: dict[str, Any] = {}
    with _stop_on_signals(state):
        while state.step < train.max_steps and not state.should_stop:
            batch = _to_device(data.train.get_batch(sampler.next_indices()), device)
            _train_step(state, batch, sums)
            state.step += 1
            for callback in callbacks:
                callback.on_step_end(state)
            if state.step % train.log_every == 0 or state.step == train.max_steps:
                logs = _flush_logs(state, sums)
                state.metrics.update(logs)
                for callback in callbacks:
                    callback.on_log(state, logs)
            if train.eval_every and state.step % train.eval_every == 0:
                metrics = evaluate(state)
                state.metrics.update(metrics)
                for callback in callbacks:
                    callback.on_eval(state, metrics)
            if train.max_minutes is not None and state.elapsed >= train.max_minutes * 60:
                state.request_stop(f"time budget of {train.max_minutes} min reached")
            if info.enabled and distributed.any_process(state.should_stop, info, device):
                state.request_stop("another process stopped")
    if not state.stop_reason:
        state.stop_reason = f"max_steps {train.max_steps} reached"
    for callback in callbacks:
        callback.on_fit_end(state)
    return TrainResult(run_dir, state.last_checkpoint, state.step, state.stop_reason, dict(state.metrics))


def _restore(state: TrainState, checkpoint: Path) -> None:
    sidecar = ckpt.read_sidecar(checkpoint)
    ckpt.load_weights(state.model, ckpt.read_tensors(checkpoint, "model.safetensors", sidecar), source=str(checkpoint))
    saved = ckpt.read_training_state(checkpoint, sidecar)
    for name, optimizer in state.optimizers.items():
        optimizer.load_state_dict(saved["optimizers"][name])
    state.sampler.load_state_dict(saved["sampler"])
    state.step = int(saved["step"])
    state.metrics = dict(sidecar.get("metrics", {}))
    rng = saved["rng"][state.dist.rank] if len(saved["rng"]) == state.dist.world_size else saved["rng"][0]
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and state.device.type == "cuda":
        torch.cuda.set_rng_state(rng["cuda"], state.device)
    for callback in state.callbacks:
        if callback.key and callback.key in saved["callbacks"]:
            callback.load_state_dict(saved["callbacks"][callback.key])


def _without_none(value: Any) -> Any:
    """TOML has no null: leave unset keys out (they fall back to their defaults when read again)."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    return value
