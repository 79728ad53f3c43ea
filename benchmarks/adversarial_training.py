"""The robust/clean trade-off of adversarial training: the MNIST classifier preset trained for the same
number of steps plainly, with FGSM examples and with PGD examples (model.adversarial_*; one loop), then
attacked on the first test images with FGSM and PGD-10 at the training budget.

    OMP_NUM_THREADS=1 python benchmarks/adversarial_training.py [--steps 250] [--eps 0.1] [--images 500] [--variant plain|fgsm|pgd|packaged]

(one --variant per process runs them side by side; without it, all in turn)

Training budgets are CPU seconds of this process at one thread (the same on a busy machine); the packaged
mnist-classifier (1,400 plain steps) is attacked alongside for reference.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from aigc.backbones import load_backbone
from aigc.config import DataConfig, load_config
from aigc.data import load_dataset
from aigc.loading import load
from aigc.safety.robustness import evaluate_robustness
from aigc.training.callbacks import default_callbacks
from aigc.training.loop import fit

VARIANTS = {
    "plain": ("plain", []),
    "fgsm": ("FGSM training (weight 0.5)", ["model.adversarial_steps=1", "model.adversarial_weight=0.5"]),
    "pgd": ("PGD-2 training (weight 0.5)", ["model.adversarial_steps=2", "model.adversarial_weight=0.5"]),
}


def attacked(classifier, images, labels, eps):
    fgsm = evaluate_robustness(classifier, images, labels, attack="fgsm", eps=eps)
    pgd = evaluate_robustness(classifier, images, labels, attack="pgd", eps=eps, steps=10)
    return fgsm.clean_accuracy, fgsm.attacked_accuracy, pgd.attacked_accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=250)
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--variant", choices=("all", "packaged", *VARIANTS), default="all")
    args = parser.parse_args()
    packaged = load_backbone("mnist-classifier").classifier
    test = load_dataset(DataConfig(name="mnist"), packaged.config).test
    images, labels = test.images[: args.images], test.labels[: args.images]
    print(f"load average {os.getloadavg()[0]:.1f}; {args.steps} steps, batch 128, eps {args.eps} (pixel share), {args.images} test images")
    print(f"| classifier | training CPU-s | clean | FGSM eps {args.eps} | PGD-10 eps {args.eps} |")
    print("|---|---|---|---|---|")
    if args.variant in ("all", "packaged"):
        clean, fgsm, pgd = attacked(packaged, images, labels, args.eps)
        print(f"| packaged mnist-classifier (1,400 plain steps) | – | {clean:.2%} | {fgsm:.2%} | {pgd:.2%} |", flush=True)
    with tempfile.TemporaryDirectory() as root:
        for key, (name, extra) in VARIANTS.items():
            if args.variant not in ("all", key):
                continue
            overrides = [f"train.max_steps={args.steps}", "train.eval_every=0", "train.progress=false", "train.tensorboard=false", *extra]
            if extra:
                overrides.append(f"model.adversarial_eps={args.eps}")
            config = load_config("classifier-mnist", overrides)
            run = Path(root) / key
            started = time.process_time()
            fit(config, run, callbacks=default_callbacks(config, run))
            seconds = time.process_time() - started
            clean, fgsm, pgd = attacked(load(str(run)).module, images, labels, args.eps)
            print(f"| {name} | {seconds:.0f} | {clean:.2%} | {fgsm:.2%} | {pgd:.2%} |", flush=True)


if __name__ == "__main__":
    main()
