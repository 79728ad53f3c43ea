"""How many training steps a CPU budget buys, per preset, on this machine.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/budget_steps.py gan-mnist dcgan-mnist --budget-minutes 10

For each preset: a short real training run (`--seconds`, default 20, through the one loop, no samples or
checkpoints) measures, after a few warm-up steps, the steps per second of wall time and per second of this
process's CPU time. The budget in steps is the CPU rate times the budget: "10 minutes" means ten minutes of
CPU time, which at OMP_NUM_THREADS=1 is ten minutes of one core. Training then runs with
`--set train.max_steps=STEPS` (no time limit), so a shared machine (wall time longer than CPU time) gives
the same result as a quiet one. At one thread CPU time barely depends on what else runs; the wall-clock
rate printed beside it shows how busy the machine was.

Prints one JSON object: preset -> {steps_per_cpu_second, steps_per_wall_second, budget_steps}.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from aigc.config import load_config
from aigc.training.callbacks import Callback, default_callbacks
from aigc.training.loop import fit
from machine import cpu_name, peak_rss_mb, reset_peak_rss  # benchmarks run as scripts: this folder is on sys.path

QUIET = ["train.eval_every=0", "train.sample_every=0", "train.checkpoint_every=0", "train.progress=false",
         "train.tensorboard=false", "train.log_every=1000000"]
WARMUP_STEPS = 5


class StepClock(Callback):
    def __init__(self):
        self.first = self.last = None  # (wall, cpu) seconds
        self.steps = 0

    def on_step_end(self, state):
        now = (time.perf_counter(), time.process_time())
        if state.step == WARMUP_STEPS:
            self.first = now
        self.last, self.steps = now, state.step


def steps_per_second(preset: str, overrides: list[str], seconds: float) -> tuple[float, float, float | None]:
    """(steps per wall second, steps per CPU second) after the warm-up steps, and the peak RSS (MiB) meanwhile."""
    clock = StepClock()
    reset_peak_rss()
    config = load_config(preset, overrides + QUIET + [f"train.max_minutes={seconds / 60}", "train.max_steps=100000000"])
    with tempfile.TemporaryDirectory() as folder:
        fit(config, Path(folder) / "run", callbacks=[*default_callbacks(config, Path(folder) / "run"), clock])
    if clock.first is None or clock.steps <= WARMUP_STEPS:
        raise SystemExit(f"{preset}: fewer than {WARMUP_STEPS + 1} steps in {seconds} s; give more --seconds")
    steps = clock.steps - WARMUP_STEPS
    return steps / (clock.last[0] - clock.first[0]), steps / (clock.last[1] - clock.first[1]), peak_rss_mb()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("presets", nargs="+")
    parser.add_argument("--budget-minutes", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring run per preset")
    parser.add_argument("--set", action="append", default=[], help="extra overrides for every preset")
    args = parser.parse_args()
    report = {
        "budget_minutes": args.budget_minutes,
        "threads": torch.get_num_threads(),
        "machine": f"{cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "load_average_before": os.getloadavg()[0],
        "presets": {},
    }
    for preset in args.presets:
        wall, cpu, rss = steps_per_second(preset, list(args.set), args.seconds)
        report["presets"][preset] = {
            "steps_per_cpu_second": round(cpu, 3),
            "steps_per_wall_second": round(wall, 3),
            "budget_steps": int(cpu * args.budget_minutes * 60),
            "peak_rss_mib": rss,
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
