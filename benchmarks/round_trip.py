"""Round trip between the captioner and text-to-image: both directions scored by the packaged classifier.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/round_trip.py CAPTIONER_RUN --t2i t2i-cgan-mnist --images 200

Image -> text -> image: the first --images MNIST *test* images (never trained on) are captioned (beam search,
--beams) by CAPTIONER_RUN (a captioner on mnist-captioning); each caption is the prompt of --samples images
from the text-to-image model (seeds 1000 i + j); the packaged MNIST classifier (weights sha256 recorded)
labels them. Scores: the share of captions that name the image's digit and no other (`named_digits`, as in
captioner_digits.py), and the share of regenerated images of the original image's class; the classifier
on the original test images is the ceiling.

Text -> image -> text: every held-out prompt of aigc/data/captions.py (4 English + 4 Chinese templates x 10
digits, never used in training) makes --samples images; the classifier labels them (the t2i model's prompt
accuracy) and the captioner captions them. Scores: images of the prompt's digit, and captions that name it.

Every model goes through the one generation path (aigc.generation.pipeline via LoadedModel.generate).
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

import aigc
from aigc.config import DataConfig
from aigc.data import load_dataset
from aigc.data.captions import LANGUAGES, class_captions
from aigc.generation.requests import CaptionRequest
from aigc.metrics.features import load_feature_network

sys.path.insert(0, str(Path(__file__).parent))
from captioner_digits import named_digits  # noqa: E402  (the one "which digit does this caption name" rule)
from machine import cpu_name  # noqa: E402  (this folder: benchmarks run as scripts)


def caption(captioner, images: np.ndarray, beams: int) -> list[str]:
    """uint8 [N, H, W, 1] -> one caption each."""
    return [captioner.generate(CaptionRequest(image=image, num_beams=beams)).text for image in images]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("captioner", help="a captioner run folder or zoo name (trained on mnist-captioning)")
    parser.add_argument("--t2i", default="t2i-cgan-mnist", help="a text-to-image run folder or zoo name")
    parser.add_argument("--images", type=int, default=200, help="MNIST test images for image -> text -> image")
    parser.add_argument("--samples", type=int, default=2, help="images generated per caption or prompt")
    parser.add_argument("--beams", type=int, default=3)
    args = parser.parse_args()

    started = time.perf_counter()
    captioner, t2i = aigc.load(args.captioner, safety=False), aigc.load(args.t2i, safety=False)
    network = load_feature_network("mnist-classifier")
    test = load_dataset(DataConfig(name="mnist", val_fraction=0.0), t2i.info.config.model).test  # 28x28 grey, as the classifier takes
    batch = test.get_batch(torch.arange(args.images))
    originals = ((batch["images"] + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()  # [N, 28, 28, 1]
    labels = batch["labels"].numpy()

    # Image -> text -> image
    captions = caption(captioner, originals, args.beams)
    regenerated = [t2i.generate(t2i.module.request_class(prompt=text, count=args.samples, seed=1000 * i)).images for i, text in enumerate(captions)]
    predicted = network.probabilities(np.concatenate(regenerated)).argmax(axis=1).reshape(args.images, args.samples)
    image_to_text = {
        "images": args.images,
        "classifier on the originals": float((network.probabilities(originals).argmax(axis=1) == labels).mean()),
        "captions naming the digit": float(np.mean([named_digits(text) == {int(d)} for text, d in zip(captions, labels)])),
        "regenerated images of the digit": float((predicted == labels[:, None]).mean()),
        "examples": [f"{d}: {text}" for d, text in list(zip(labels.tolist(), captions))[:8]],
    }

    # Text -> image -> text
    prompts = [(prompt, digit) for language in LANGUAGES for digit in range(10) for prompt in class_captions("mnist-captions", digit, "heldout", language)]
    images = [t2i.generate(t2i.module.request_class(prompt=prompt, count=args.samples, seed=1000 * i)).images for i, (prompt, _) in enumerate(prompts)]
    digits = np.repeat([digit for _, digit in prompts], args.samples)
    generated = np.concatenate(images)
    back = caption(captioner, generated, args.beams)
    text_to_image = {
        "prompts": len(prompts),
        "images": len(generated),
        "images of the prompt's digit (classifier)": float((network.probabilities(generated).argmax(axis=1) == digits).mean()),
        "captions naming the prompt's digit": float(np.mean([named_digits(text) == {int(d)} for text, d in zip(back, digits)])),
        "examples": [f"{prompt} -> {text}" for (prompt, _), text in list(zip(prompts, back[:: args.samples]))[::10]],
    }
    report = {
        "captioner": args.captioner, "t2i": args.t2i, "beams": args.beams, "samples": args.samples,
        "image -> text -> image": image_to_text, "text -> image -> text": text_to_image,
        "classifier": network.describe(), "seconds": round(time.perf_counter() - started, 1),
        "machine": f"{cpu_name()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads, load {os.getloadavg()[0]:.1f}",
    }
    print(json.dumps(report, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
