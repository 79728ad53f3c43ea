"""Extensions of the training loop: EMA, metric logs, sample grids, checkpoints, early stopping, progress.

A callback sees the loop's `TrainState` at a few moments. One with a `key` has state that is saved in
checkpoints (`state_dict` / `load_state_dict`), so that resume is exact; one with `extra_weights` adds
weight files that generation can use (the EMA weights).
"""

from __future__ import annotations

import copy
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from aigc.errors import ConfigError

if TYPE_CHECKING:
    from aigc.training.loop import TrainState


class Callback:
    key: str = ""  # non-empty: state_dict() is saved in checkpoints under this name
    main_process_only: bool = False  # True: only rank 0 runs it (writers)

    def on_fit_start(self, state: "TrainState") -> None: ...
    def on_step_end(self, state: "TrainState") -> None: ...
    def on_log(self, state: "TrainState", logs: dict[str, float]) -> None: ...
    def on_eval(self, state: "TrainState", metrics: dict[str, float]) -> None: ...
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
    """One JSON object per line in RUN/metrics.jsonl (always), and TensorBoard scalars when installed."""

    main_process_only = True

    def __init__(self, run_dir: Path, tensorboard: bool):
        self.path = run_dir / "metrics.jsonl"
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional: JSONL is always written
                SummaryWriter = None
            if SummaryWriter is not None:
                self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))

    def _write(self, state: "TrainState", values: dict[str, float]) -> None:
        record = {"step": state.step, "elapsed_s": round(state.elapsed, 3), **values}
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
        artifact = model.generate(model.preview_request())
        artifact.save(self.folder / f"step-{state.step:07d}{artifact.suffix}")
        self.last_written = state.step

    def on_step_end(self, state: "TrainState") -> None:
        if self.every and state.step % self.every == 0:
            self._write(state)

    def on_fit_end(self, state: "TrainState") -> None:
        self._write(state)


class Checkpointer(Callback):
    """A checkpoint every `every` steps and at the end of training (which includes SIGINT/SIGTERM)."""

    def __init__(self, every: int):
        self.every = every
        self.last_saved = -1

    def on_fit_start(self, state: "TrainState") -> None:
        self.last_saved = state.step  # a resumed run does not re-save the checkpoint it came from

    def on_step_end(self, state: "TrainState") -> None:
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
    """A progress bar with rate and ETA on a terminal; on a pipe or in CI, one line per log step."""

    main_process_only = True

    def __init__(self, max_steps: int):
        self.max_steps = max_steps
        self.bar = None
        self.task = None
        self.start_step = 0
        self.start_time = 0.0

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

    def _rate(self, state: "TrainState") -> float:
        return (state.step - self.start_step) / max(time.perf_counter() - self.start_time, 1e-9)

    def on_step_end(self, state: "TrainState") -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=state.step, rate=f"{self._rate(state):.1f} it/s")

    def on_log(self, state: "TrainState", logs: dict[str, float]) -> None:
        shown = "  ".join(f"{k.removeprefix('loss/')} {v:.4g}" for k, v in logs.items() if k.startswith("loss/"))
        if self.bar is not None:
            self.bar.update(self.task, logs=shown)
            return
        rate = self._rate(state)
        remaining = (self.max_steps - state.step) / rate if rate > 0 else float("inf")
        eta = f"{remaining / 60:.1f} min" if remaining != float("inf") else "?"
        print(f"step {state.step}/{self.max_steps}  {rate:.1f} it/s  eta {eta}  {shown}", file=sys.stderr, flush=True)

    def on_eval(self, state: "TrainState", metrics: dict[str, float]) -> None:
        shown = "  ".join(f"{k} {v:.4g}" for k, v in metrics.items())
        (self.bar.console.print if self.bar is not None else lambda text: print(text, file=sys.stderr, flush=True))(f"step {state.step} eval: {shown}")

    def on_fit_end(self, state: "TrainState") -> None:
        if self.bar is not None:
            self.bar.stop()
