"""DCGAN training step: a plain PyTorch loop vs the aigc loop, fp32 and bf16 autocast, side by side.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/dcgan_step_vs_plain.py [--steps 30] [--rounds 3]

The same networks (dcgan-mnist with model.width=64 model.latent_dim=100: G 759,680 / D 138,624
parameters), batch 128, Adam 2e-4 (0.5, 0.999), MNIST 28x28. The plain loop is written out below in the
shape of pytorch/examples dcgan/main.py: D step on real + detached fake, then G step through the updated
D; nothing else. The aigc loop is `fit` with the preset's callbacks (EMA of weights included) minus
sampling, checkpoints and evaluation.

The machine is shared, so the four variants run in turns (plain fp32, aigc fp32, plain bf16, aigc bf16,
then again) and each figure is the best of --rounds. Two rates each: images per wall second and per
second of this process's CPU time (at one thread the CPU rate barely depends on the load). Ratios are
against the plain fp32 loop.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from aigc.config import load_config
from aigc.data import load_dataset
from aigc.loading import build_model
from aigc.training.callbacks import default_callbacks
from aigc.training.loop import _fill_from_data, fit

sys.path.insert(0, str(Path(__file__).parent))

from train_throughput import Timer  # noqa: E402  (one step timer for both training benchmarks)
from machine import cpu_name, peak_rss_mb, reset_peak_rss  # noqa: E402  (this folder: benchmarks run as scripts)

OVERRIDES = ["model.width=64", "model.latent_dim=100", "train.batch_size=128"]


def config_for(precision: str, steps: int):
    return load_config("dcgan-mnist", [
        *OVERRIDES, f"train.max_steps={steps}", f"train.precision={precision}", "train.sample_every=0",
        "train.checkpoint_every=0", "train.eval_every=0", "train.progress=false", "train.tensorboard=false",
        "train.log_every=1000000",
    ])


def aigc_loop(precision: str, steps: int, warmup: int) -> tuple[float, float]:
    config = config_for(precision, steps + warmup)
    timer = Timer(warmup)
    with tempfile.TemporaryDirectory() as folder:
        run_dir = Path(folder) / "run"
        fit(config, run_dir, callbacks=[*default_callbacks(config, run_dir), timer])
    images = timer.steps * config.train.batch_size
    return images / (timer.end[0] - timer.start[0]), images / (timer.end[1] - timer.start[1])


def plain_loop(images: torch.Tensor, precision: str, steps: int, warmup: int) -> tuple[float, float]:
    """pytorch/examples-style DCGAN loop over the same networks (built by aigc, so same init and shapes)."""
    config = config_for(precision, steps + warmup)
    config.model.num_classes = None
    torch.manual_seed(0)
    gan = build_model(config).train()
    generator, discriminator = gan.generator, gan.discriminator
    optimizer_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optimizer_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if precision == "bf16" else contextlib.nullcontext
    batch, latent = config.train.batch_size, config.model.latent_dim
    start = None
    for step in range(steps + warmup):
        if step == warmup:
            start = (time.perf_counter(), time.process_time())
        real = images[torch.randint(len(images), (batch,))]
        noise = torch.randn(batch, latent)
        with autocast():
            fake = generator(noise)
            loss_d = F.softplus(-discriminator(real)).mean() + F.softplus(discriminator(fake.detach())).mean()
        optimizer_d.zero_grad(set_to_none=True)
        loss_d.backward()
        optimizer_d.step()
        with autocast():
            loss_g = F.softplus(-discriminator(fake)).mean()
        optimizer_g.zero_grad(set_to_none=True)
        loss_g.backward()
        optimizer_g.step()
    end = (time.perf_counter(), time.process_time())
    count = steps * batch
    return count / (end[0] - start[0]), count / (end[1] - start[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    config = config_for("fp32", 1)
    data = load_dataset(config.data, config.model)
    _fill_from_data(config, data)
    images = data.train.get_batch(torch.arange(min(len(data.train), 20000)))["images"]
    gan = build_model(config)
    counts = {name: sum(p.numel() for p in getattr(gan, name).parameters()) for name in ("generator", "discriminator")}
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; G {counts['generator']:,} / D {counts['discriminator']:,} parameters, batch 128")
    load_before = os.getloadavg()
    variants = {
        "plain fp32": lambda: plain_loop(images, "fp32", args.steps, args.warmup),
        "aigc fp32": lambda: aigc_loop("fp32", args.steps, args.warmup),
        "plain bf16": lambda: plain_loop(images, "bf16", args.steps, args.warmup),
        "aigc bf16": lambda: aigc_loop("bf16", args.steps, args.warmup),
    }
    best = {name: (0.0, 0.0) for name in variants}
    peak = {name: 0.0 for name in variants}  # MiB, the process's peak RSS while the variant ran (the data, loaded once, included)
    for round_ in range(args.rounds):
        for name, run in variants.items():
            reset_peak_rss()
            wall, cpu = run()
            best[name] = (max(best[name][0], wall), max(best[name][1], cpu))
            peak[name] = max(peak[name], peak_rss_mb() or 0.0)
            print(f"  round {round_ + 1} {name:<11} {wall:8.0f} img/s wall {cpu:8.0f} img/s per CPU s, peak RSS {peak[name]:.0f} MiB", flush=True)
    base_wall, base_cpu = best["plain fp32"]
    print(f"{'variant':<12} {'img/s wall':>11} {'per CPU s':>10} {'x plain fp32 (wall)':>20} {'(CPU)':>7} {'peak RSS MiB':>13}")
    for name, (wall, cpu) in best.items():
        print(f"{name:<12} {wall:>11.0f} {cpu:>10.0f} {wall / base_wall:>20.2f} {cpu / base_cpu:>7.2f} {peak[name]:>13.0f}")
    print(json.dumps({
        "best_images_per_s": {k: {"wall": round(v[0]), "cpu": round(v[1])} for k, v in best.items()},
        "peak_rss_mib": peak, "threads": torch.get_num_threads(), "load_average": [round(x, 2) for x in (*load_before, *os.getloadavg())],
        "steps": args.steps, "rounds": args.rounds,
    }))


if __name__ == "__main__":
    main()
