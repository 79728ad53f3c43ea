"""Training throughput of the GAN presets on this machine, through the real training loop.

    .venv/bin/python benchmarks/train_throughput.py [--steps 150] [--presets dcgan-mnist,wgan-gp-mnist]

Prints real images consumed per second (one step = one batch of real images; for WGAN-GP a step is one
critic update and the generator updates every 5th step) in float32 and with bf16 autocast, and the
bf16/fp32 ratio. The first `--warmup` steps are excluded (allocator and kernel warm-up).

Two rates each: per second of wall time, and per second of this process's CPU time. At OMP_NUM_THREADS=1
the CPU rate is what one core delivers even on a shared machine; the wall rate shows how busy it was
(on a quiet machine the two agree).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from aigc.config import load_config
from aigc.training.callbacks import Callback, default_callbacks
from aigc.training.loop import fit
from machine import cpu_name, peak_rss_mb, reset_peak_rss  # benchmarks run as scripts: this folder is on sys.path


class Timer(Callback):
    """(wall, cpu) seconds between the end of step `warmup` and the last step."""

    def __init__(self, warmup: int):
        self.warmup, self.start, self.end, self.steps = warmup, None, None, 0

    def on_step_end(self, state):
        now = (time.perf_counter(), time.process_time())
        if state.step == self.warmup:
            self.start = now
        elif state.step > self.warmup:
            self.end, self.steps = now, state.step - self.warmup


def measure(preset: str, precision: str, steps: int, warmup: int) -> tuple[float, float, float | None]:
    """(images per wall second, images per CPU second, the process's peak RSS in MiB while it trained)."""
    reset_peak_rss()
    config = load_config(preset, [
        f"train.max_steps={steps + warmup}", f"train.precision={precision}", "train.sample_every=0",
        "train.checkpoint_every=0", "train.eval_every=0", "train.progress=false", "train.tensorboard=false",
        "train.log_every=1000000",
    ])
    timer = Timer(warmup)
    with tempfile.TemporaryDirectory() as folder:
        run_dir = Path(folder) / "run"  # default_callbacks joins paths with `/`: a str fails
        fit(config, run_dir, callbacks=[*default_callbacks(config, run_dir), timer])
    images = timer.steps * config.train.batch_size
    return images / (timer.end[0] - timer.start[0]), images / (timer.end[1] - timer.start[1]), peak_rss_mb()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default="dcgan-mnist,wgan-gp-mnist")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print(f"{'preset':<16} {'fp32 img/s':>11} {'(per CPU s)':>11} {'bf16 img/s':>11} {'(per CPU s)':>11} {'bf16/fp32':>10} {'peak RSS MiB fp32/bf16':>23}")
    for preset in args.presets.split(","):
        fp32, fp32_cpu, fp32_rss = measure(preset, "fp32", args.steps, args.warmup)
        bf16, bf16_cpu, bf16_rss = measure(preset, "bf16", args.steps, args.warmup)
        print(f"{preset:<16} {fp32:>11.0f} {fp32_cpu:>11.0f} {bf16:>11.0f} {bf16_cpu:>11.0f} {bf16_cpu / fp32_cpu:>10.2f} {fp32_rss or 0:>11.0f} / {bf16_rss or 0:<9.0f}", flush=True)


if __name__ == "__main__":
    main()
