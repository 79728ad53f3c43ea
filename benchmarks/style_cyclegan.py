"""CycleGAN content preservation: does the packaged MNIST classifier still read a digit after translation?

    .venv/bin/python benchmarks/style_cyclegan.py RUN [--count 1000]
    .venv/bin/python benchmarks/style_cyclegan.py --train-minutes 10 --out runs/cyclegan-digits   # train first

For `count` printed digits (domain B, all fonts) translated to handwriting (B -> A) and `count` MNIST test digits
translated to print (A -> B): the share the `mnist-classifier` backbone labels with the digit they started as,
beside the same classifier on the untranslated images (the baseline a perfect translation keeps).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import aigc  # noqa: E402
from aigc.backbones import load_backbone  # noqa: E402
from aigc.config import load_config  # noqa: E402
from aigc.data import load_dataset  # noqa: E402


def accuracy(classifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.no_grad():
        logits = classifier(images, layers=("logits",))["logits"]
    return float((logits.argmax(1) == labels).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--train-minutes", type=float, default=None)
    parser.add_argument("--out", default="runs/cyclegan-digits")
    args = parser.parse_args()
    run = args.run
    if args.train_minutes is not None:
        from aigc.training.callbacks import default_callbacks
        from aigc.training.loop import fit

        config = load_config("cyclegan-digits", [f"train.max_minutes={args.train_minutes}", "train.max_steps=1000000", "train.progress=false"])
        result = fit(config, Path(args.out), callbacks=default_callbacks(config, Path(args.out)))
        print(f"trained {result.step} steps ({result.stop_reason})")
        run = str(result.run_dir)
    model = aigc.load(run).module
    data = load_dataset(model_config_data(run), model.config)
    classifier = load_backbone("mnist-classifier")
    generator = torch.Generator().manual_seed(0)
    printed_index = torch.randperm(len(data.test.printed), generator=generator)[: args.count]
    printed = data.test.printed[printed_index].float() / 127.5 - 1
    printed_labels = data.test.printed_labels[printed_index]
    handwritten = data.test.handwritten[: args.count].float() / 127.5 - 1
    labels = data.test.labels[: args.count]
    print(f"model {run}, {args.count} digits each way")
    print("| images | mnist-classifier agrees with the source digit |")
    print("|---|---|")
    print(f"| printed, untranslated (baseline) | {accuracy(classifier, printed, printed_labels):.3f} |")
    print(f"| printed -> handwritten (B -> A) | {accuracy(classifier, model.translate(printed, 'b_to_a'), printed_labels):.3f} |")
    print(f"| MNIST test, untranslated (baseline) | {accuracy(classifier, handwritten, labels):.3f} |")
    print(f"| MNIST test -> printed (A -> B) | {accuracy(classifier, model.translate(handwritten, 'a_to_b'), labels):.3f} |")


def model_config_data(run: str):
    return aigc.load(run).info.config.data


if __name__ == "__main__":
    main()
