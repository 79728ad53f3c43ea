"""Extensions of the training loop: EMA, metric logs, sample grids, checkpoints, early stopping, progress.

A callback sees the loop's `TrainState` at a few moments. One with a `key` has state that is saved in
checkpoints (`state_dict` / `load_state_dict`), so that resume is exact; one with `extra_weights` adds
weight files that generation can use (the EMA weights).

`fit` runs exactly the callbacks it is given; `default_callbacks(config, run_dir)` assembles the ones a
config asks for (`aigc.train` adds the sample-quality scorer from the metrics package to them).
"""

from __future__ import annotations

import copy
import json
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import torch

from aigc.errors import ConfigError
from aigc.files import atomic_write_text

if TYPE_CHECKING:
    from aigc.config import RunConfig
    from aigc.training.loop import TrainState

log = logging.getLogger(__name__)  # slow moments between progress lines (the CLI prints them)


class Callback:
    key: str = ""  # non-empty: state_dict() is saved in checkpoints under this name
    main_process_only: bool = False  # True: only rank 0 runs it (writers)

    def on_fit_start(self, state: "TrainState") -> None: ...  # after a resume has restored the step and weights
    def on_step_end(self, state: "TrainState") -> None: ...  # right after the optimizer steps
    def on_log(self, state: "TrainState", logs: dict[str, float]) -> None: ...
    def on_eval(self, state: "TrainState", metrics: dict[str, float]) -> None: ...
    def on_step_done(self, state: "TrainState") -> None: ...  # after the step's logs, evaluation and stop decision
    def on_fit_end(self, state: "TrainState") -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def extra_weights(self) -> dict[str, dict[str, torch.Tensor]]:
        return {}


class EMA(Callback):
    """Exponential moving average of the model's weights, used for samples and generation.

    The decay warms up as min(decay, (1 + n) / (10 + n)) so early averages are not dominated by the
    random initial weights. Buffers (BatchNorm statistics, counters) are copied, not averaged.
    """

    key = "ema"

    def __init__(self, decay: float):
        self.decay = decay
        self.updates = 0
        self.averaged: torch.nn.Module | None = None

    def on_fit_start(self, state: "TrainState") -> None:
        self.averaged = copy.deepcopy(state.model).eval().requires_grad_(False)

    @torch.no_grad()
    def on_step_end(self, state: "TrainState") -> None:
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for average, current in zip(self.averaged.parameters(), state.model.parameters()):
            average.lerp_(current.detach(), 1.0 - decay)
        for average, current in zip(self.averaged.buffers(), state.model.buffers()):
            average.copy_(current)
        self.updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {"updates": self.updates, "weights": self.averaged.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.updates = int(state["updates"])
        self.averaged.load_state_dict(state["weights"])

    def extra_weights(self) -> dict[str, dict[str, torch.Tensor]]:
        return {"ema": self.averaged.state_dict()}


class MetricLogger(Callback):
    """One JSON object per line in RUN/metrics.jsonl (always), and TensorBoard scalars when installed.

    The file always describes the run that is training: a fresh run starts it empty (an earlier attempt
    that died before its first checkpoint leaves nothing behind), and a resumed run first drops the rows of
    the steps after its checkpoint (they were lost with the crash and are trained again), so no step
    appears twice.
    """

    main_process_only = True

    def __init__(self, run_dir: Path, tensorboard: bool):
        self.run_dir = run_dir
        self.path = run_dir / "metrics.jsonl"
        self.tensorboard = tensorboard
        self.writer = None

    def on_fit_start(self, state: "TrainState") -> None:
        kept = [line for line in _read_lines(self.path) if _row_step(line) is not None and _row_step(line) <= state.step]
        atomic_write_text(self.path, "".join(line + "\n" for line in kept))
        if self.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional: JSONL is always written
                return
            # purge_step hides the events of lost steps, as the JSONL drops their rows.
            self.writer = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"), purge_step=state.step + 1 if state.step else None)

    def _write(self, state: "TrainState", values: dict[str, float]) -> None:
        record = {"step": state.step, "elapsed_s": round(state.elapsed, 3), "cpu_s": round(state.cpu_elapsed, 3), **values}
        with open(self.path, "a", encoding="utf-8") as file:
            file.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for name, value in values.items():
                self.writer.add_scalar(name, value, state.step)

    def on_log(self, state: "TrainState", logs: dict[str, float]) -> None:
        self._write(state, logs)

    def on_eval(self, state: "TrainState", metrics: dict[str, float]) -> None:
        self._write(state, metrics)

    def on_fit_end(self, state: "TrainState") -> None:
        if self.writer is not None:
            self.writer.close()


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return []


def _row_step(line: str) -> int | None:
    """The step of one metrics.jsonl row; None for a line a crash cut short."""
    try:
        step = json.loads(line).get("step")
    except (ValueError, AttributeError):
        return None
    return step if isinstance(step, int) else None


class SampleGrids(Callback):
    """Every `every` steps and at the end, the model's preview request saved under RUN/samples/."""

    main_process_only = True

    def __init__(self, run_dir: Path, every: int):
        self.folder = run_dir / "samples"
        self.every = every
        self.last_written = -1

    def _write(self, state: "TrainState") -> None:
        model = state.sampling_model
        if state.step == self.last_written or not hasattr(model, "preview_request"):
            return  # non-generative families (feature classifiers) have nothing to preview
        from aigc.generation.pipeline import generate  # the one generation path, as the CLI and studio use

        log.info("step %d: drawing the sample grid", state.step)  # a diffusion model's takes a while
        artifact = generate(model, model.preview_request())
        artifact.save(self.folder / f"step-{state.step:07d}{artifact.suffix}")
        self.last_written = state.step

    def on_step_end(self, state: "TrainState") -> None:
        if self.every and state.step % self.every == 0:
            self._write(state)

    def on_fit_end(self, state: "TrainState") -> None:
        self._write(state)


class Checkpointer(Callback):
    """A checkpoint every `every` steps and at the end of training (which includes SIGINT/SIGTERM).

    It saves once the step is done (logged, evaluated, stop decided), so that a checkpoint carries the
    metrics and the stop reason of its own step."""

    def __init__(self, every: int):
        self.every = every
        self.last_saved = -1

    def on_fit_start(self, state: "TrainState") -> None:
        self.last_saved = state.step  # a resumed run does not re-save the checkpoint it came from

    def on_step_done(self, state: "TrainState") -> None:
        if self.every and state.step % self.every == 0:
            state.save_checkpoint()
            self.last_saved = state.step

    def on_fit_end(self, state: "TrainState") -> None:
        if state.step != self.last_saved:
            state.save_checkpoint()
            self.last_saved = state.step


class EarlyStopping(Callback):
    """Stop when a validation metric has not improved by `min_delta` for `patience` evaluations."""

    key = "early_stopping"

    def __init__(self, metric: str, mode: str, patience: int, min_delta: float):
        self.metric, self.mode, self.patience, self.min_delta = metric, mode, patience, min_delta
        self.best: float | None = None
        self.bad_evaluations = 0

    def on_eval(self, state: "TrainState", metrics: dict[str, float]) -> None:
        if self.metric not in metrics:
            raise ConfigError(
                f"metric {self.metric!r} is not computed at evaluation",
                field="train.early_stopping.metric",
                fix=f"use one of: {', '.join(sorted(metrics))}",
            )
        value = metrics[self.metric]
        better = self.best is None or (
            value < self.best - self.min_delta if self.mode == "min" else value > self.best + self.min_delta
        )
        if better:
            self.best, self.bad_evaluations = value, 0
        else:
            self.bad_evaluations += 1
            if self.bad_evaluations >= self.patience:
                state.request_stop(f"early stopping: {self.metric} did not improve for {self.patience} evaluations (best {self.best:.5g})")

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "bad_evaluations": self.bad_evaluations}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.bad_evaluations = state["best"], int(state["bad_evaluations"])


class Progress(Callback):
    """A progress bar with rate and ETA on a terminal. On a pipe or in CI: a line when training starts, one
    after the first step (which can be slow: warm-up, lazy loading), one per log step, and one at least
    every `quiet_seconds` in between, so a slow run never looks stuck."""

    main_process_only = True

    def __init__(self, max_steps: int, quiet_seconds: float = 30.0):
        self.max_steps = max_steps
        self.quiet_seconds = quiet_seconds
        self.bar = None
        self.task = None
        self.start_step = 0
        self.start_time = 0.0
        self.last_line = 0.0

    def on_fit_start(self, state: "TrainState") -> None:
        self.start_step, self.start_time = state.step, time.perf_counter()
        if sys.stderr.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self.bar = Bar(
                TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[logs]}"),
                transient=False,
            )
            self.bar.start()
            self.task = self.bar.add_task("train", total=self.max_steps, completed=state.step, rate="", logs="")
            return
        start = f"from step {state.step} " if state.step else ""
        self._print(f"training {state.config.family} on {state.config.data.name}: {start}to step {self.max_steps}")

    def _print(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)
        self.last_line = time.perf_counter()

    def _rate(self, state: "TrainState") -> float:
        return (state.step - self.start_step) / max(time.perf_counter() - self.start_time, 1e-9)

    def _status(self, state: "TrainState") -> str:
        rate = self._rate(state)
        remaining = (self.max_steps - state.step) / rate if rate > 0 else float("inf")
        eta = f"{remaining / 60:.1f} min" if remaining != float("inf") else "?"
        return f"step {state.step}/{self.max_steps}  {rate:.1f} it/s  eta {eta}"

    def on_step_end(self, state: "TrainState") -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=state.step, rate=f"{self._rate(state):.1f} it/s")
        elif state.step == self.start_step + 1:
            self._print(f"step {state.step}/{self.max_steps}  first step took {time.perf_counter() - self.start_time:.1f} s")
        elif time.perf_counter() - self.last_line >= self.quiet_seconds:
            self._print(self._status(state))

    def on_log(self, state: "TrainState", logs: dict[str, float]) -> None:
        shown = "  ".join(f"{k.removeprefix('loss/')} {v:.4g}" for k, v in logs.items() if k.startswith("loss/"))
        if self.bar is not None:
            self.bar.update(self.task, logs=shown)
            return
        self._print(f"{self._status(state)}  {shown}")

    def on_eval(self, state: "TrainState", metrics: dict[str, float]) -> None:
        shown = "  ".join(f"{k} {v:.4g}" for k, v in metrics.items())
        (self.bar.console.print if self.bar is not None else self._print)(f"step {state.step} eval: {shown}")

    def on_fit_end(self, state: "TrainState") -> None:
        if self.bar is not None:
            self.bar.stop()


def default_callbacks(config: "RunConfig", run_dir: Path, *, scorers: Sequence[Callback] = ()) -> list[Callback]:
    """The callbacks a config asks for, in the order they must run: EMA (samples and scores read its
    weights), the `scorers` (sample-quality scores, before the loggers and early stopping, which read what
    they add), metric log, early stopping, sample grids, checkpoints, progress.

    The scorers come from the metrics package, which this layer does not import: `aigc.train` builds
    them from `train.eval_metrics` (aigc.api.training_callbacks)."""
    train = config.train
    if train.eval_metrics and not scorers:
        raise ConfigError(
            f"train.eval_metrics asks for sample scores ({', '.join(train.eval_metrics)}) but no scorer was given",
            field="train.eval_metrics",
            fix="train with aigc.train / `aigc train`, or pass callbacks=aigc.api.training_callbacks(config, run_dir) to fit",
        )
    callbacks: list[Callback] = []
    if train.ema_decay is not None:
        callbacks.append(EMA(train.ema_decay))
    callbacks.extend(scorers)
    callbacks.append(MetricLogger(run_dir, train.tensorboard))
    if train.early_stopping is not None:
        stop = train.early_stopping
        callbacks.append(EarlyStopping(stop.metric, stop.mode, stop.patience, stop.min_delta))
    callbacks.append(SampleGrids(run_dir, train.sample_every))
    callbacks.append(Checkpointer(train.checkpoint_every))
    if train.progress:
        callbacks.append(Progress(train.max_steps))
    return callbacks
