"""Validation loss of a language-model preset after a fixed wall-clock training budget (default 5 minutes).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/text_lm_budget.py --preset gpt-shakespeare --minutes 5
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/text_lm_budget.py --preset lstm-shakespeare --minutes 5

1. (optional, `--calibrate-seconds S`, not counted in the budget) a short run measures steps per second on
   this machine now, and train.max_steps is set so that the learning-rate schedule ends at the budget;
   without it the preset's own max_steps is used.
2. `aigc train PRESET --set train.max_minutes=M` through the real loop (no evaluation or samples during
   training), timed from the first to the last step.
3. The final weights are scored on the *whole* validation split (every token after the first exactly once,
   non-overlapping windows of the model's context), with `aigc.models.text.common.evaluate_split`.

Prints one JSON object: nats per token and per character, bits per character, steps, tokens seen,
training seconds, threads and machine.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

import aigc
from aigc.config import load_config
from aigc.data import load_dataset
from aigc.models.text.common import evaluate_split
from aigc.training.callbacks import Callback, default_callbacks
from aigc.training.loop import fit
from budget_steps import steps_per_second  # benchmarks/ is on sys.path: scripts run from it
from machine import cpu_name, peak_rss_mb, reset_peak_rss  # benchmarks run as scripts: this folder is on sys.path

QUIET = ["train.eval_every=0", "train.sample_every=0", "train.checkpoint_every=0", "train.progress=false",
         "train.tensorboard=false", "train.log_every=100"]


class Timer(Callback):
    """Seconds from the start of training to its last step (data loading before fit is not counted)."""

    def __init__(self):
        self.start = self.last = None

    def on_fit_start(self, state):
        self.start = time.perf_counter()

    def on_step_end(self, state):
        self.last = time.perf_counter()


def calibrate(preset: str, overrides: list[str], seconds: float) -> float:
    """Training steps per wall-clock second, measured by budget_steps.py's short run."""
    wall, _cpu = steps_per_second(preset, overrides + ["train.warmup_steps=0"], seconds)
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="gpt-shakespeare")
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--calibrate-seconds", type=float, default=0.0)
    parser.add_argument("--set", action="append", default=[], help="extra overrides, e.g. model.num_layers=3")
    parser.add_argument("--out", default=None, help="run folder (default: a temporary one)")
    parser.add_argument("--eval-batch", type=int, default=64)
    args = parser.parse_args()

    overrides = list(args.set)
    calibrated = None
    if args.calibrate_seconds > 0:
        rate = calibrate(args.preset, overrides, args.calibrate_seconds)
        calibrated = int(rate * args.minutes * 60)
        overrides.append(f"train.max_steps={calibrated}")
    config = load_config(args.preset, overrides + QUIET + [f"train.max_minutes={args.minutes}"])
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="aigc-bench-")) / "run"
    timer = Timer()
    reset_peak_rss()
    result = fit(config, out, callbacks=[*default_callbacks(config, out), timer])
    train_seconds = timer.last - timer.start
    train_peak_rss = peak_rss_mb()  # MiB, while training (before the evaluation loads anything)

    model = aigc.load(result.run_dir, safety=False)
    data = load_dataset(model.info.config.data, model.info.config.model)
    started = time.perf_counter()
    scores = evaluate_split(model.module, data.val, batch_size=args.eval_batch)
    report = {
        "preset": args.preset,
        "overrides": args.set,
        "budget_minutes": args.minutes,
        "calibrated_max_steps": calibrated,
        "steps": result.step,
        "stop_reason": result.stop_reason,
        "train_seconds": round(train_seconds, 1),
        "train_peak_rss_mib": train_peak_rss,
        "tokens_seen": result.step * config.train.batch_size * model.module.config.context_length,
        "val_tokens": scores["tokens"],
        "val_characters": scores["characters"],
        "val_nats_per_token": round(scores["loss_per_token"], 4),
        "val_nats_per_char": round(scores["nats_per_char"], 4),
        "val_bpc": round(scores["bpc"], 4),
        "eval_seconds": round(time.perf_counter() - started, 1),
        "threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "machine": f"{cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "run_dir": str(result.run_dir),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
