"""Issue-6 numbers for VAE, diffusion and text-to-image runs (recorded in benchmarks/RESULTS.md).

    # FID (MNIST classifier) of a run, with DDIM at several step counts for diffusion runs, and images/s
    python benchmarks/image_generative.py fid RUN [--samples 1000] [--steps 10,25,50]
    # negative ELBO (nats, bits/dim) of a VAE on its dataset's test split
    python benchmarks/image_generative.py elbo RUN
    # prompt accuracy on held-out caption templates, English and Chinese
    python benchmarks/image_generative.py prompts RUN [--samples-per-prompt 10] [--sample-steps 25] [--guidance 3]
    # sampling speed of each sampler and step count
    python benchmarks/image_generative.py speed RUN [--count 50]
    # emoji (no classifier): share of yellow / red pixels for face and heart prompts in both languages
    python benchmarks/image_generative.py colours RUN [--count 8] [--sample-steps 10]

Each command prints one JSON object and also writes it to RUN/bench-<command>.json. Thread count: set
OMP_NUM_THREADS (the RESULTS rows use 1). Every FID here uses the same protocol (packaged
mnist-classifier features, reference = the first N images of a seeded permutation of the train split,
N = --samples), so rows are comparable with each other and with GAN runs scored by this script, not with
10,000-sample scores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

import aigc
from aigc.files import atomic_write_text


def _write(run: str, command: str, result: dict) -> None:
    result = {"command": " ".join(sys.argv), "threads": torch.get_num_threads(), **result}
    text = json.dumps(result, indent=2, ensure_ascii=False, default=str)
    print(text, flush=True)
    if Path(run).is_dir():
        atomic_write_text(Path(run) / f"bench-{command}.json", text + "\n")


def fid(args) -> dict:
    from aigc.metrics.evaluate import evaluate_model
    from aigc.metrics.protocol import Protocol

    model = aigc.load(args.run, safety=False)
    config = model.info.config
    rows = []
    is_diffusion = "sample_steps" in type(config.model).model_fields
    for steps in (args.steps if is_diffusion else [None]):
        if steps is not None:
            model.module.config.sample_steps = steps  # the default that generate() uses (DDIM)
        started, cpu = time.perf_counter(), time.process_time()
        report, _ = evaluate_model(model, config, Protocol(metrics=("fid",), num_samples=args.samples, seed=0), batch_size=250)
        cpu = time.process_time() - cpu
        rows.append({
            "sampler": f"ddim-{steps}" if steps is not None else "direct",
            "fid": report.scores["fid"]["value"],
            "label": report.scores["fid"].get("label"),
            "generate_wall_s": report.timing["generate_s"],
            "cpu_s": round(cpu, 1),  # generation + features + score, this process
            "wall_s": round(time.perf_counter() - started, 1),
        })
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return {"run": args.run, "family": config.family, "step": model.info.step, "weights": model.info.weights,
            "samples": args.samples, "results": rows, "protocol": report.protocol, "warnings": report.warnings}


def elbo(args) -> dict:
    from aigc.data import load_dataset

    model = aigc.load(args.run, safety=False)
    config = model.info.config
    data = load_dataset(config.data, config.model)
    started = time.perf_counter()
    result = model.module.negative_elbo(data.test, seed=0)
    return {"run": args.run, "family": config.family, "step": model.info.step, "weights": model.info.weights,
            "split": f"{config.data.name} test", **result, "seconds": round(time.perf_counter() - started, 1)}


def prompts(args) -> dict:
    from aigc.metrics.prompt_accuracy import prompt_accuracy

    model = aigc.load(args.run, safety=False)
    options = {}
    if args.guidance is not None:
        options["guidance"] = args.guidance
    if args.sample_steps is not None:
        options["sample_steps"] = args.sample_steps
    report = prompt_accuracy(model, model.info.config.data.name, samples_per_prompt=args.samples_per_prompt, **options)
    return {"run": args.run, "family": model.info.family, "step": model.info.step, **report}


def _timed_generate(model, request) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one generate call. At OMP_NUM_THREADS=1 the CPU
    time is what the sampling costs, however busy the machine is; the wall time shows how busy it was."""
    wall, cpu = time.perf_counter(), time.process_time()
    model.generate(request)
    return time.perf_counter() - wall, time.process_time() - cpu


def speed(args) -> dict:
    model = aigc.load(args.run, safety=False)
    settings = [("ddim", 10, args.count), ("ddim", 25, args.count), ("ddim", 50, args.count),
                ("ddpm", model.module.config.num_train_timesteps, max(1, args.count // 10))]
    extra = {"prompt": "a handwritten seven"} if "prompt" in model.request_class.model_fields else {}
    rows = []
    for sampler, steps, count in settings:
        request = model.request_class(count=count, seed=0, sampler=sampler, sample_steps=steps, **extra)
        wall, cpu = _timed_generate(model, request)
        rows.append({"sampler": sampler, "steps": steps, "images": count, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                     "images_per_cpu_s": round(count / cpu, 3), "images_per_wall_s": round(count / wall, 3)})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    network = model.module.config
    return {"run": args.run, "family": model.info.family, "conditioning": network.conditioning,
            "guidance": network.guidance if network.conditioning != "none" else None,
            "load_average": os.getloadavg()[0], "results": rows}


COLOUR_PROMPTS = ["a smiling face", "一个笑脸", "a red heart", "一颗红心"]


def colour_shares(images) -> dict:
    """Shares of pixels that are emoji-face yellow and heart red (uint8 [N, H, W, 3])."""
    r, g, b = (images[..., i].astype(int) for i in range(3))
    return {"yellow": float(((r > 180) & (g > 130) & (b < 110)).mean()), "red": float(((r > 150) & (g < 90) & (b < 90)).mean())}


def colours(args) -> dict:
    """An emoji model has no classifier to score prompts with; colour is a coarse, checkable proxy:
    smiling faces are yellow and hearts red, however the prompt is worded."""
    model = aigc.load(args.run, safety=False)
    rows = []
    for prompt in COLOUR_PROMPTS:
        request = model.request_class(count=args.count, seed=0, prompt=prompt, guidance=args.guidance, sample_steps=args.sample_steps)
        rows.append({"prompt": prompt, **{k: round(v, 3) for k, v in colour_shares(model.generate(request).images).items()}})
    return {"run": args.run, "count": args.count, "sample_steps": args.sample_steps, "guidance": args.guidance, "results": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("fid")
    p.add_argument("run")
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--steps", type=lambda text: [int(x) for x in text.split(",")], default=[10, 25, 50])
    p = commands.add_parser("elbo")
    p.add_argument("run")
    p = commands.add_parser("prompts")
    p.add_argument("run")
    p.add_argument("--samples-per-prompt", type=int, default=10)
    p.add_argument("--sample-steps", type=int, default=None)
    p.add_argument("--guidance", type=float, default=None)
    p = commands.add_parser("speed")
    p.add_argument("run")
    p.add_argument("--count", type=int, default=50)
    p = commands.add_parser("colours")
    p.add_argument("run")
    p.add_argument("--count", type=int, default=8)
    p.add_argument("--sample-steps", type=int, default=10)
    p.add_argument("--guidance", type=float, default=3.0)
    args = parser.parse_args()
    result = {"fid": fid, "elbo": elbo, "prompts": prompts, "speed": speed, "colours": colours}[args.command](args)
    _write(args.run, args.command, result)


if __name__ == "__main__":
    main()
