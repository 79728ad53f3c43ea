"""Diffusion sampling: images/s and held-out prompt accuracy per sampler and step count, for the zoo's
t2i-diffusion-mnist (guidance 3; classifier-free guidance runs cond + uncond as one batched forward).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/diffusion_speed.py [--samples-per-prompt 2] [--rounds 2]
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/diffusion_speed.py --configs ddim:50,dpmpp-2m:15 --precision fp32,bf16

Speed: one prompt, `--batch` images per call, each configuration in turn, best of --rounds (images per
CPU second of this process and per wall second; the machine is shared). Quality: `aigc.metrics.
prompt_accuracy` on the held-out prompt set (80 prompts in English and Chinese, `--samples-per-prompt`
images each, the same seeds for every configuration), and the within-prompt pixel std (a collapse check).
Prompt accuracy saturates on this model, so a third column says how close each configuration gets to the
solution of the sampling ODE: the mean absolute pixel difference (of 255) from `--reference` (DDIM with
many steps) for the same seeds and prompts (`--convergence-images` of them); both DDIM and DPM-Solver++
solve that ODE, so the faster one to approach it makes better images at few steps.
Ratios are against the first configuration (the model's default sampler and step count).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

import aigc
from aigc.generation.pipeline import generate
from aigc.metrics.prompt_accuracy import prompt_accuracy
from machine import cpu_name  # benchmarks run as scripts: this folder is on sys.path


def convergence(loaded, configs, reference: str, count: int) -> dict[tuple, float]:
    """Mean |image - reference image| in uint8 levels, over `count` images (prompts of four digits)."""
    prompts = ["a handwritten seven", "a handwritten three", "手写的数字五", "a handwritten zero"]

    def images(sampler: str, steps: int, precision: str):
        with precision_of(loaded, precision):
            return [generate(loaded.module, loaded.module.request_class(prompt=p, count=count // len(prompts), seed=100 + i,
                             sampler=sampler, sample_steps=steps, guidance=3.0), info=loaded.info).images.astype("float64")
                    for i, p in enumerate(prompts)]

    sampler, steps = reference.split(":")
    target = images(sampler, int(steps), "fp32")
    distances = {}
    for config in configs:
        produced = images(*config)
        distances[config] = float(sum(abs(a - b).mean() for a, b in zip(produced, target)) / len(target))
        print(f"  distance to {reference} {config}: {distances[config]:.2f} of 255", flush=True)
    return distances


def images_per_second(loaded, sampler: str, steps: int, precision: str, batch: int) -> tuple[float, float]:
    request = loaded.module.request_class(prompt="a handwritten seven", count=batch, seed=0, sampler=sampler, sample_steps=steps, guidance=3.0)
    wall, cpu = time.perf_counter(), time.process_time()
    with precision_of(loaded, precision):
        generate(loaded.module, request, info=loaded.info)
    return batch / (time.perf_counter() - wall), batch / (time.process_time() - cpu)


class precision_of:
    """Sets the model's sampling precision (config.sample_precision) for a block."""

    def __init__(self, loaded, precision: str):
        self.config, self.precision = loaded.module.config, precision

    def __enter__(self):
        self.saved = self.config.sample_precision
        self.config.sample_precision = self.precision

    def __exit__(self, *exc):
        self.config.sample_precision = self.saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="ddim:50,ddim:15,ddim:10,dpmpp-2m:15,dpmpp-2m:10,dpmpp-2m:8")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--samples-per-prompt", type=int, default=2)
    parser.add_argument("--reference", default="ddim:200")
    parser.add_argument("--convergence-images", type=int, default=20)
    parser.add_argument("--skip-accuracy", action="store_true", help="speed and convergence only")
    args = parser.parse_args()
    loaded = aigc.load("t2i-diffusion-mnist", safety=False)
    configs = [(c.split(":")[0], int(c.split(":")[1]), p) for c in args.configs.split(",") for p in args.precision.split(",")]
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; t2i-diffusion-mnist, default {loaded.module.config.sampler} {loaded.module.config.sample_steps} steps")
    load_before = os.getloadavg()
    speed: dict[tuple, tuple[float, float]] = {}
    for round_ in range(args.rounds):
        for config in configs:
            wall, cpu = images_per_second(loaded, *config, args.batch)
            old = speed.get(config, (0.0, 0.0))
            speed[config] = (max(old[0], wall), max(old[1], cpu))
            print(f"  round {round_ + 1} {config[0]:>9} {config[1]:>3} steps {config[2]}: {wall:6.2f} img/s wall {cpu:6.2f} img/s per CPU s", flush=True)
    distances = convergence(loaded, configs, args.reference, args.convergence_images)
    quality = {}
    for config in configs:
        if args.skip_accuracy:
            quality[config] = {"accuracy": float("nan"), "by_language": {}, "within_prompt_std": None, "images": 0, "seconds": 0}
            continue
        with precision_of(loaded, config[2]):
            report = prompt_accuracy(loaded, samples_per_prompt=args.samples_per_prompt, sampler=config[0], sample_steps=config[1], guidance=3.0)
        quality[config] = report
        print(f"  accuracy {config}: {report['accuracy']:.4f} ({report['images']} images, {report['seconds']} s)", flush=True)
    base = speed[configs[0]][1]
    print(f"{'sampler':>9} {'steps':>5} {'precision':>9} {'img/s wall':>10} {'img/s CPU':>10} {'x first (CPU)':>13} {'accuracy':>9} {'en':>6} {'zh':>6} {'spread':>7} {'to ref':>7}")
    rows = []
    for config in configs:
        wall, cpu = speed[config]
        report = quality[config]
        by = report["by_language"]
        spread = report["within_prompt_std"]
        print(f"{config[0]:>9} {config[1]:>5} {config[2]:>9} {wall:>10.2f} {cpu:>10.2f} {cpu / base:>13.2f} {report['accuracy']:>9.4f} "
              f"{by.get('en', float('nan')):>6.3f} {by.get('zh', float('nan')):>6.3f} {spread if spread is not None else float('nan'):>7.3f} {distances[config]:>7.2f}")
        rows.append({"sampler": config[0], "steps": config[1], "precision": config[2], "images_per_s_wall": round(wall, 2),
                     "images_per_s_cpu": round(cpu, 2), "accuracy": report["accuracy"], "images": report["images"],
                     "distance_to_reference": round(distances[config], 3)})
    print(json.dumps({"results": rows, "threads": torch.get_num_threads(), "batch": args.batch, "samples_per_prompt": args.samples_per_prompt, "reference": args.reference,
                      "load_average": [round(x, 2) for x in (*load_before, *os.getloadavg())]}))


if __name__ == "__main__":
    main()
