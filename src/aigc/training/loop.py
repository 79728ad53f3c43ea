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
import logging
import shutil
import signal
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import tomli_w
import torch

from aigc import checkpoint as ckpt
from aigc.config import RunConfig
from aigc.data import DatasetBundle, load_dataset
from aigc.errors import AigcError, AigcWarning, CheckpointError, ConfigError
from aigc.files import atomic_write_text
from aigc.loading import build_model
from aigc.registry import get_model
from aigc.seeding import seed_everything
from aigc.training import distributed, finetune
from aigc.training.callbacks import EMA, Callback, default_callbacks
from aigc.training.lora import adapter_record, add_lora, split_adapter
from aigc.training.optim import learning_rate_factor
from aigc.training.sampler import EpochSampler


log = logging.getLogger(__name__)  # what the loop is doing before the first step (the CLI prints it)


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
    started_cpu: float = field(default_factory=time.process_time)
    lineage: dict[str, Any] = field(default_factory=dict)  # init_from, lora, frozen: recorded in every checkpoint

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    @property
    def cpu_elapsed(self) -> float:
        """CPU seconds this process has spent since the loop started (all its threads, user + system)."""
        return time.process_time() - self.started_cpu

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
        distributed.average_buffers(self.model, self.dist)
        in_sync = distributed.replicas_identical(self.model, self.dist)
        if not self.dist.is_main:
            return
        weights = {"model": self.model.state_dict()}
        if "lora" in self.lineage:  # the adapters go to their own file, apart from the frozen base weights
            weights["model"], weights["adapter"] = split_adapter(weights["model"])
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
            **self.lineage,
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
    resume: bool | str | Path = False,
    callbacks: Sequence[Callback] | None = None,
    model: torch.nn.Module | None = None,
) -> TrainResult:
    """Train `config` into `run_dir` with exactly `callbacks` (None: `default_callbacks(config, run_dir)`).

    model: train this network instead of a fresh `build_model(config)` (`aigc optimize` fine-tunes a pruned
    or factorised one, whose shapes its config alone does not give); it is trained in place.

    resume=True continues from run_dir's newest checkpoint (from step 0 when an earlier attempt died before
    writing one); resume=PATH continues from that checkpoint of the run (RUN/checkpoints/step-N).
    """
    run_dir = Path(run_dir)
    if callbacks is None:
        callbacks = default_callbacks(config, run_dir)
    info, device = distributed.setup(config.train.device)
    try:
        return _fit(config, run_dir, resume, list(callbacks), info, device, model)
    finally:
        distributed.teardown(info)


def _check_config(config: RunConfig) -> None:
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


def holds_a_run(run_dir: Path) -> bool:
    """Whether run_dir holds a checkpoint (or the `latest` pointer to one); a folder whose only attempt
    died before its first checkpoint (staging folders, a config, a few log rows) does not."""
    folder = run_dir / "checkpoints"
    return folder.is_dir() and ((folder / "latest").exists() or any(p.is_dir() for p in folder.glob("step-*")))


def _resume_point(run_dir: Path, resume: bool | str | Path) -> Path | None:
    """The checkpoint to continue from; None: start at step 0 (the earlier attempt left none)."""
    if resume is not True:
        return ckpt.resolve_checkpoint(resume)
    if holds_a_run(run_dir):
        return ckpt.resolve_checkpoint(run_dir)
    if (run_dir / "config.toml").is_file():
        warnings.warn(f"{run_dir} has no complete checkpoint yet (the earlier attempt stopped before its first one): starting again from step 0", AigcWarning, stacklevel=3)
        return None
    raise CheckpointError(f"{run_dir} holds no run to resume", field="--resume", fix=f"start it: aigc train PRESET --out {run_dir}")


def _fit(config, run_dir, resume, callbacks, info, device, model=None) -> TrainResult:
    train = config.train
    _check_config(config)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"{run_dir} is a file, not a folder", field="--out", fix="choose a new folder for the run")
    checkpoint = _resume_point(run_dir, resume) if resume else None
    if not resume and holds_a_run(run_dir):
        raise ConfigError(f"{run_dir} already holds a run", field="--out", fix=f"resume it with --resume {run_dir}, or choose another --out")
    sidecar = ckpt.read_sidecar(checkpoint) if checkpoint is not None else None
    if sidecar is not None and int(sidecar.get("step", 0)) >= train.max_steps:
        # Nothing to train: say so instead of silently rewriting the last checkpoint.
        step = int(sidecar.get("step", 0))
        reason = f"already finished: step {step} of train.max_steps={train.max_steps}"
        return TrainResult(run_dir, checkpoint if info.is_main else None, step, reason, dict(sidecar.get("metrics", {})))

    parent = finetune.find_parent(config) if checkpoint is None else None  # a resumed run has its own weights
    if parent is not None:
        finetune.inherit_tokenizer(config, parent)
    log.info("loading dataset %s", config.data.name)
    seed_everything(train.seed)  # the same initial weights on every process
    data = load_dataset(config.data, config.model)
    _fill_from_data(config, data)
    if parent is not None:
        finetune.check_vocabulary(data.train, parent)
    model = (build_model(config) if model is None else model).to(device)
    lineage = _prepare_weights(config, model, parent, sidecar)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log.info("built %s: %s parameters (%s trained)", config.family, f"{sum(p.numel() for p in model.parameters()):,}", f"{trainable:,}")
    distributed.broadcast_module(model, info)
    optimizers = _configure_optimizers(config, model)
    for optimizer in optimizers.values():
        for group in optimizer.param_groups:
            group.setdefault("base_lr", group["lr"])
    sampler = EpochSampler(len(data.train), train.batch_size, train.seed, info.rank, info.world_size)
    callbacks = [cb for cb in callbacks if info.is_main or not cb.main_process_only]
    state = TrainState(config, run_dir, model, optimizers, data, sampler, device, info, callbacks, lineage=lineage)
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if (run_dir / "checkpoints").is_dir():
            ckpt.clean_staging(run_dir / "checkpoints")
        if checkpoint is not None and checkpoint.parent.resolve() == (run_dir / "checkpoints").resolve():
            _drop_later_checkpoints(checkpoint)
        (run_dir / "config.toml").write_text(tomli_w.dumps(_without_none(config.to_dict())), encoding="utf-8")
    torch.manual_seed(train.seed + 1 + info.rank)  # each process draws its own noise from here on

    saved = _restore(state, checkpoint, sidecar) if checkpoint is not None else None
    for callback in callbacks:  # after the restore: they see the resumed step, weights and metrics
        callback.on_fit_start(state)
    if saved is not None:
        _restore_callbacks_and_rng(state, saved)
        log.info("resumed from %s (step %d)", checkpoint, state.step)

    model.train()
    sums: dict[str, Any] = {}
    with _stop_on_signals(state):
        while state.step < train.max_steps and not state.should_stop:
            batch = _to_device(data.train.get_batch(sampler.next_indices()), device)
            _train_step(state, batch, sums)
            state.step += 1
            for callback in callbacks:
                callback.on_step_end(state)
            if train.max_minutes is not None and state.elapsed >= train.max_minutes * 60:
                state.request_stop(f"time budget of {train.max_minutes} min reached")
            if train.max_cpu_minutes is not None and state.cpu_elapsed >= train.max_cpu_minutes * 60:
                state.request_stop(f"CPU budget of {train.max_cpu_minutes} CPU-min reached")
            if state.step % train.log_every == 0 or state.step == train.max_steps:
                _log(state, sums)
            if train.eval_every and state.step % train.eval_every == 0:
                metrics = evaluate(state)
                state.metrics.update(metrics)
                for callback in callbacks:
                    callback.on_eval(state, metrics)
            if info.enabled and distributed.any_process(state.should_stop, info, device):
                state.request_stop("another process stopped")
            if state.step == train.max_steps:
                state.request_stop(f"max_steps {train.max_steps} reached")
            if state.should_stop and sums:
                _log(state, sums)  # the last checkpoint carries the metrics of its own step
            for callback in callbacks:
                callback.on_step_done(state)
    state.request_stop(f"max_steps {train.max_steps} reached")  # (a no-op when a reason is already set)
    failed: BaseException | None = None
    for callback in callbacks:  # every one runs: a failing sample grid must not cost the final checkpoint
        try:
            callback.on_fit_end(state)
        except Exception as error:
            failed = failed or error
    if failed is not None:
        raise failed
    return TrainResult(run_dir, state.last_checkpoint, state.step, state.stop_reason, dict(state.metrics))


def _prepare_weights(config: RunConfig, model: torch.nn.Module, parent, sidecar) -> dict[str, Any]:
    """Fine-tuning: the parent's weights (a fresh run only), LoRA adapters, frozen parameters; returns what
    the checkpoints record about them (a resumed run carries its own record of the parent forward)."""
    train = config.train
    lineage: dict[str, Any] = {}
    if parent is not None:
        lineage["init_from"] = parent.record(finetune.load_parent_weights(model, parent, train.allow_partial_init))
    elif sidecar is not None and "init_from" in sidecar:
        lineage["init_from"] = sidecar["init_from"]
    if train.lora is not None:
        # The weights a family needs only to train (a GAN's discriminator) keep training under LoRA.
        keep = tuple(getattr(get_model(config.family).model_class, "training_only", ()))
        lineage["lora"] = adapter_record(train.lora, add_lora(model, train.lora, keep), model)
    if train.freeze:
        lineage["frozen"] = len(finetune.freeze(model, train.freeze))
    return lineage


def _configure_optimizers(config: RunConfig, model: torch.nn.Module) -> dict[str, torch.optim.Optimizer]:
    try:
        return model.configure_optimizers(config.optim)
    except ValueError as error:
        if "empty parameter list" not in str(error) or not (config.train.freeze or config.train.lora):
            raise
        raise ConfigError(
            "train.freeze / train.lora leave one of the model's optimizers nothing to train",
            field="train.freeze", fix="freeze fewer parameters (a GAN trains its generator and discriminator with separate optimizers)",
        ) from None


def _log(state: TrainState, sums: dict[str, Any]) -> None:
    logs = _flush_logs(state, sums)
    state.metrics.update(logs)
    for callback in state.callbacks:
        callback.on_log(state, logs)


def _drop_later_checkpoints(checkpoint: Path) -> None:
    """Resuming from an earlier checkpoint abandons the ones after it: remove them, and point `latest`
    at the one resumed from, so that pruning and a later --resume never pick a checkpoint of the
    abandoned continuation."""
    folder = checkpoint.parent
    later = [p for p in folder.glob("step-*") if p.is_dir() and p.name > checkpoint.name]
    if later:
        warnings.warn(
            f"resuming from {checkpoint.name}: removing the later checkpoints {', '.join(sorted(p.name for p in later))}",
            AigcWarning, stacklevel=4,
        )
        for old in later:
            shutil.rmtree(old, ignore_errors=True)
    atomic_write_text(folder / "latest", checkpoint.name + "\n")


# What exact resume reads from a checkpoint's training state, and the type each must have.
_TRAINING_STATE = {"step": int, "optimizers": dict, "sampler": dict, "rng": list, "callbacks": dict}


def _read_state(state: TrainState, checkpoint: Path, sidecar: dict[str, Any]) -> dict[str, Any]:
    saved = ckpt.read_training_state(checkpoint, sidecar)
    where = checkpoint / ckpt.SIDECAR
    for key, kind in _TRAINING_STATE.items():
        if not isinstance(saved.get(key), kind):
            raise CheckpointError(f"the training state in {where} lacks {key!r} (or it is malformed)", fix="use an earlier checkpoint")
    for key in ("epoch", "batch"):
        if not isinstance(saved["sampler"].get(key), int):
            raise CheckpointError(f"the training state in {where} lacks sampler {key!r}", fix="use an earlier checkpoint")
    missing = sorted(set(state.optimizers) - set(saved["optimizers"]))
    if missing or not saved["rng"]:
        raise CheckpointError(f"the training state in {where} lacks {'optimizer ' + repr(missing[0]) if missing else 'rng states'}", fix="use an earlier checkpoint")
    return saved


def _restore(state: TrainState, checkpoint: Path, sidecar: dict[str, Any]) -> dict[str, Any]:
    """Model, optimizers, sampler, step and metrics; returns the saved state for the callbacks' part."""
    saved = _read_state(state, checkpoint, sidecar)
    tensors = ckpt.read_tensors(checkpoint, "model.safetensors", sidecar)
    if ckpt.ADAPTER in sidecar["files"]:  # a LoRA run: the adapters, unmerged, back into their wrappers
        tensors.update(ckpt.read_tensors(checkpoint, ckpt.ADAPTER, sidecar))
    ckpt.load_weights(state.model, tensors, source=str(checkpoint))
    for name, optimizer in state.optimizers.items():
        try:
            optimizer.load_state_dict(saved["optimizers"][name])
        except (ValueError, KeyError, TypeError) as error:
            raise CheckpointError(f"the {name} optimizer state in {checkpoint} does not fit the model: {error}", fix="use an earlier checkpoint") from None
    state.sampler.load_state_dict(saved["sampler"])
    state.step = int(saved["step"])
    state.metrics = dict(sidecar.get("metrics", {}))
    saved_world = len(saved["rng"])
    if saved_world != state.dist.world_size and state.dist.is_main:
        batch = state.sampler.batch_size
        warnings.warn(
            f"{checkpoint} was trained by {saved_world} processes and this run has {state.dist.world_size}: the effective "
            f"batch changes from {saved_world * batch} to {state.dist.world_size * batch} examples per step (learning "
            f"dynamics and data order differ from an uninterrupted run)",
            AigcWarning, stacklevel=4,
        )
    return saved


def _restore_callbacks_and_rng(state: TrainState, saved: dict[str, Any]) -> None:
    """Last, so that nothing a callback draws at fit start shifts the restored random streams."""
    for callback in state.callbacks:
        if callback.key and callback.key in saved["callbacks"]:
            callback.load_state_dict(saved["callbacks"][callback.key])
    rng = saved["rng"][state.dist.rank] if len(saved["rng"]) == state.dist.world_size else saved["rng"][0]
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and state.device.type == "cuda":
        torch.cuda.set_rng_state(rng["cuda"], state.device)


def _without_none(value: Any) -> Any:
    """TOML has no null: leave unset keys out (they fall back to their defaults when read again)."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    return value
