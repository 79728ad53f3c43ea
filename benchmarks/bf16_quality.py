"""Does bf16 autocast train DCGAN as well as fp32? The same preset, steps and seeds in both precisions,
then FD-MNISTClassifier of each run on the 10,000-sample protocol: the quality half of issue 16's bf16 goal
(the speed half is dcgan_step_vs_plain.py).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bf16_quality.py [--steps 1000] [--seeds 0,1] [--samples 10000]

Networks as in dcgan_step_vs_plain.py (model.width=64, model.latent_dim=100, batch 128). Seeds differ in
weights, noise and data order, so the spread between seeds of one precision is the noise against which the
precisions are compared. Runs go to runs/bench-bf16/PRECISION-seedS; a finished run is scored, not retrained.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

import aigc
from aigc.metrics.evaluate import evaluate_model
from aigc.metrics.protocol import Protocol
from machine import cpu_name, peak_rss_mb, reset_peak_rss  # benchmarks run as scripts: this folder is on sys.path

OVERRIDES = ["model.width=64", "model.latent_dim=100", "train.batch_size=128", "train.sample_every=0",
             "train.progress=false", "train.tensorboard=false", "train.log_every=500"]


def train_and_score(precision: str, seed: int, steps: int, samples: int, root: Path) -> dict:
    run_dir = root / f"{precision}-seed{seed}"
    cpu = time.process_time()
    reset_peak_rss()
    if not (run_dir / "checkpoints" / f"step-{steps}").is_dir():
        aigc.train("dcgan-mnist", overrides=[*OVERRIDES, f"train.precision={precision}", f"train.seed={seed}",
                                             f"train.checkpoint_every={steps}"], max_steps=steps, out=run_dir)
    train_cpu = time.process_time() - cpu
    train_rss = peak_rss_mb()  # MiB while it trained (none when the run was already there)
    model = aigc.load(str(run_dir), safety=False)
    report, _ = evaluate_model(model, model.info.config, Protocol(metrics=("fid",), num_samples=samples, seed=0), batch_size=250)
    return {"precision": precision, "seed": seed, "step": model.info.step, "fd": round(report.scores["fid"]["value"], 3),
            "label": report.scores["fid"].get("label"), "train_cpu_s": round(train_cpu, 1), "train_peak_rss_mib": train_rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seeds", type=lambda text: [int(x) for x in text.split(",")], default=[0, 1])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-bf16"))
    args = parser.parse_args()
    rows = []
    for seed in args.seeds:  # precisions in turns, so machine load hits both alike
        for precision in ("fp32", "bf16"):
            rows.append(train_and_score(precision, seed, args.steps, args.samples, args.out))
            print(json.dumps(rows[-1]), flush=True)
    fd = {p: [r["fd"] for r in rows if r["precision"] == p] for p in ("fp32", "bf16")}
    summary = {p: {"mean": round(statistics.fmean(v), 3), "min": min(v), "max": max(v)} for p, v in fd.items()}
    print(json.dumps({
        "machine": cpu_name(), "threads": torch.get_num_threads(),
        "load_average": os.getloadavg(), "steps": args.steps, "samples": args.samples, "fd": summary,
        "bf16_over_fp32_mean_fd": round(summary["bf16"]["mean"] / summary["fp32"]["mean"], 3),
        "train_cpu_ratio_fp32_over_bf16": round(sum(r["train_cpu_s"] for r in rows if r["precision"] == "fp32")
                                                / max(1e-9, sum(r["train_cpu_s"] for r in rows if r["precision"] == "bf16")), 2),
    }, indent=2), flush=True)


if __name__ == "__main__":
    main()
