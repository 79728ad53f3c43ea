"""Few-shot image fine-tuning: the zoo DCGAN fine-tuned on a folder of 100 images of one class.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/finetune_gan_fewshot.py --digit 3 --minutes 4

1. The "user folder": the first 100 MNIST *test* images of one digit (the zoo model never saw them),
   written as PNG files, as a user's own images would be.
2. before    the zoo's `dcgan-mnist` (all ten digits) as it is.
3. finetuned `aigc train dcgan-mnist --init-from dcgan-mnist --set data.name=image-folder --set data.path=DIR`
             for `--minutes` (the zoo export keeps the discriminator, so both networks continue), EMA 0.99.
4. scratch   the same command without --init-from, for the same number of steps.
   Both are scored at every 50th step (their EMA weights), so the rows show FD along the way.
5. real      the *other* test images of that digit, as a floor: what FD real images of the class get.

`fd_unseen` scores the same generated images against those other test images of the digit instead: a
model that copies the 100 folder images scores well on `fd` but not on `fd_unseen`.

Each is scored with FD against the folder (its 100 images are the reference) on the packaged MNIST
classifier's features, through `aigc.metrics.evaluate` (the `aigc eval` path): `--samples` generated
images, image i from seed i. FD from 100 reference images is biased upwards; the real floor, scored with
the same counts, shows by how much. Prints one JSON object per row.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from PIL import Image

import aigc
from aigc.config import DataConfig
from aigc.data import load_dataset
from aigc.metrics.evaluate import evaluate_images, evaluate_model
from aigc.metrics.protocol import Protocol
from machine import cpu_name  # benchmarks run as scripts: this folder is on sys.path

QUIET = ["train.ema_decay=0.99", "train.sample_every=0", "train.progress=false", "train.tensorboard=false", "train.log_every=100"]
EVERY = 50  # steps between the checkpoints that are scored: FD along the way, not only at the end


def write_folder(digit: int, count: int, folder: Path, others: Path) -> np.ndarray:
    """The first `count` MNIST test images of `digit` as PNGs in `folder`, the rest in `others`; returns the rest."""
    bundle = load_dataset(DataConfig(name="mnist", val_fraction=0.0), SimpleNamespace(image_size=28, channels=1))
    batch = bundle.test.get_batch(torch.arange(len(bundle.test)))
    images = ((batch["images"][batch["labels"] == digit] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)  # [N, 1, 28, 28]
    folder.mkdir(parents=True, exist_ok=True)
    others.mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(images):
        Image.fromarray(image[0].numpy(), mode="L").save((folder if index < count else others) / f"{digit}-{index:04d}.png")
    return images[count:].numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--digit", type=int, default=3)
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="aigc-bench-fewshot-"))
    folder = out / f"digit-{args.digit}"
    unseen = out / f"digit-{args.digit}-others"
    others = write_folder(args.digit, args.images, folder, unseen)
    data = ["data.name='image-folder'", f"data.path={json.dumps(str(folder))}", "data.val_fraction=0.0"]
    protocol = Protocol(metrics=("fid",), num_samples=args.samples, feature_network="mnist-classifier", reference_count=args.images)
    machine = f"{cpu_name()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads, torch {torch.__version__}"
    rows = []

    def fd(model, config) -> dict[str, float]:
        """FD against the folder, and against the digit's other test images (does it generalise or copy?)."""
        scores = {}
        for key, path, count in (("fd", folder, args.images), ("fd_unseen", unseen, len(others))):
            scored = config.model_copy(update={"data": DataConfig(name="image-folder", path=str(path), val_fraction=0.0)})
            report, _ = evaluate_model(model, scored, protocol.replace(reference_count=count), cache_dir=out / "cache")
            scores[key] = round(report.scores["fid"]["value"], 2)
        return scores

    def emit(row):
        rows.append(row)
        print(json.dumps({**row, "machine": machine}), flush=True)

    zoo = aigc.load("dcgan-mnist", safety=False)
    emit({"row": "before (zoo dcgan-mnist)", "steps": 0, **fd(zoo, zoo.info.config)})

    def along_the_way(name: str, result, seconds: float) -> None:
        for checkpoint in sorted((result.run_dir / "checkpoints").glob("step-*")):
            model = aigc.load(checkpoint, safety=False)
            emit({"row": name, "steps": model.info.step, "train_seconds": round(seconds * model.info.step / result.step, 1), **fd(model, model.info.config)})

    keep = [f"train.checkpoint_every={EVERY}", "train.keep_checkpoints=1000"]
    started = time.perf_counter()
    tuned = aigc.train("dcgan-mnist", overrides=[*data, *QUIET, *keep, "train.init_from='dcgan-mnist'", f"train.max_minutes={args.minutes}", "train.max_steps=100000"], out=out / "finetuned")
    along_the_way("fine-tuned from the zoo", tuned, time.perf_counter() - started)

    started = time.perf_counter()
    scratch = aigc.train("dcgan-mnist", overrides=[*data, *QUIET, *keep, f"train.max_steps={tuned.step}"], out=out / "scratch")
    along_the_way("from scratch, same steps", scratch, time.perf_counter() - started)

    count = min(args.samples, len(others))
    report = evaluate_images(others[:count], protocol.replace(num_samples=count), data_config=DataConfig(name="image-folder", path=str(folder), val_fraction=0.0),
                             image_size=28, channels=1, cache_dir=out / "cache", candidate="real")
    emit({"row": f"real: {count} other test images of digit {args.digit}", "fd": round(report.scores["fid"]["value"], 2)})
    print(json.dumps({"protocol": report.protocol}, default=str), flush=True)


if __name__ == "__main__":
    main()
