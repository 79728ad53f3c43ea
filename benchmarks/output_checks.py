"""How the near-copy output checks (aigc/safety/output_checks.py) see real zoo models: the distance from each
generated image to its nearest training image, beside the same distance between training images (leave
one out); the share of each generated text copied verbatim (32-character runs) from the training text; the
flag rate at the default thresholds; and what building the index and checking a batch cost.

    OMP_NUM_THREADS=1 python benchmarks/output_checks.py [--images 256] [--texts 16]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import aigc
from aigc.generation.requests import ImageRequest
from aigc.generation.text import TextRequest
from aigc.safety.output_checks import ImageIndex, NearestTrainingImage, TextIndex, TrainingTextOverlap, training_split, training_text


def images(name: str, count: int) -> None:
    model = aigc.load(name, safety=False)
    started = time.process_time()
    split = training_split(model.info)
    index = ImageIndex(split.images.permute(0, 2, 3, 1).numpy())
    built = time.process_time() - started
    rng = np.random.default_rng(0)
    probes = rng.choice(len(index.vectors), 256, replace=False)
    q = index.vectors[probes]
    squared = (q * q).sum(1)[:, None] + index.norms[None] - 2 * q @ index.vectors.T
    squared[np.arange(len(probes)), probes] = np.inf
    train_nn = np.sqrt(np.maximum(squared.min(1), 0) / q.shape[1])
    made = model.generate(ImageRequest(count=count, seed=0)).images
    started = time.process_time()
    _, generated_nn = index.nearest(made)
    checked = time.process_time() - started
    threshold = NearestTrainingImage().max_distance
    print(f"| {name} | {len(index.vectors)} | {np.percentile(train_nn, 1):.3f} / {np.median(train_nn):.3f} | {generated_nn.min():.3f} / {np.percentile(generated_nn, 1):.3f} / {np.median(generated_nn):.3f} "
          f"| {(generated_nn <= threshold).sum()}/{count} | {built:.2f} | {checked / count * 1000:.2f} |")


def texts(name: str, count: int) -> None:
    model = aigc.load(name, safety=False)
    started = time.process_time()
    split = training_split(model.info)
    print(f"{name}: data read in {time.process_time() - started:.1f} CPU-s", file=sys.stderr, flush=True)
    corpus = training_text(split, model.info)
    index = TextIndex(corpus, TrainingTextOverlap().ngram)
    built = time.process_time() - started
    sample = model.generate(TextRequest(prompt="", max_tokens=200, count=count, seed=0))
    started = time.process_time()
    shares = [index.overlap(text)[0] for text in sample.texts]
    checked = time.process_time() - started
    threshold = TrainingTextOverlap().max_overlap
    print(f"| {name} | {len(corpus):,} chars | {np.median(shares):.3f} / {max(shares):.3f} | {sum(s >= threshold for s in shares)}/{count} | {built:.2f} | {checked / count * 1000:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--texts", type=int, default=16)
    parser.add_argument("--part", choices=("all", "images", "texts"), default="all")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}")
    if args.part != "texts":
        image_table(args.images)
    if args.part != "images":
        text_table(args.texts)


def image_table(count: int) -> None:
    print("| model | training images | train→train NN RMS p1 / median | generated→train NN RMS min / p1 / median | flagged (≤ 0.04) | index CPU-s | check CPU-ms/image |")
    print("|---|---|---|---|---|---|---|")
    for name in ("dcgan-mnist", "cgan-mnist", "wgan-gp-mnist"):
        images(name, count)


def text_table(count: int) -> None:
    print()
    print("| model | training text | copied share median / max | flagged (≥ 0.5) | index CPU-s | check CPU-ms/text |")
    print("|---|---|---|---|---|---|")
    for name in ("gpt-tang", "gpt-shakespeare"):
        texts(name, count)


if __name__ == "__main__":
    main()
