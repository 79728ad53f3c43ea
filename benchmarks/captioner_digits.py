"""Captioning held-out digits: the captioner vs a nearest-neighbour-caption baseline, BLEU-4, CIDEr-D and accuracy.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/captioner_digits.py --steps 3000
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/captioner_digits.py --run RUN --images 1000   # e.g. captioner-mnist

With --run, a trained captioner (any captioning dataset of digits) is scored instead of training one, on
the first --images of its validation split, the nearest neighbour searched over its whole training split.

1. `aigc train captioner-tiny` grown to width 32, hidden 64, embedding 32 (`--set`), `--steps` steps on
   `digits-captioning` (scikit-learn's 8x8 digits; English and Chinese caption templates, 90% train).
2. Each held-out (validation) image is captioned with beam search (3 beams) through `aigc.load`.
3. Baseline: the caption of the nearest training image in pixel space (L2). Its class has 28 captions;
   the baseline takes the consensus one, the caption with the highest BLEU against the other 27 (as
   Devlin et al. 2015, https://arxiv.org/abs/1505.04467, choose among neighbours' captions).
4. Scores: corpus BLEU-4 (sacrebleu through `aigc.metrics.text.bleu`, tokenizer "zh": CJK characters
   split, words kept) and CIDEr-D (pycocoevalcap through `aigc.metrics.text.cider`, same tokens) against
   all train-template captions of the image's class (28 references, English and Chinese; the captioner
   has seen these phrasings, not these images), and accuracy: whether the caption names the right digit
   and no other (`named_digits`: its English word or numeral as a word, its Chinese numeral).
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import time
from pathlib import Path

import torch

import aigc
from aigc.data import load_dataset
from aigc.data.captions import DIGIT_WORDS_EN, DIGIT_WORDS_ZH, digit_captions
from aigc.generation.requests import CaptionRequest
from aigc.metrics.text import bleu, cider
from machine import cpu_name  # benchmarks run as scripts: this folder is on sys.path

SIZE = ["model.width=32", "model.hidden_size=64", "model.embedding_dim=32"]
QUIET = ["train.eval_every=0", "train.progress=false", "train.tensorboard=false", "train.log_every=100"]


def named_digits(text: str) -> set[int]:
    """The digits a caption names: English words and numerals as whole words ("the number 3, written by
    hand" names 3: punctuation is not part of a word), Chinese numerals outside the templates' measure
    words "一个" / "一张" ("a" / "one sheet of": "一张数字七的图片" names 7 only)."""
    words = set(re.findall(r"[A-Za-z]+|\d", text))
    chinese = text.replace("一个", "").replace("一张", "")
    return {d for d in range(10) if DIGIT_WORDS_EN[d] in words or str(d) in words or DIGIT_WORDS_ZH[d] in chinese}


def names_the_digit(text: str, digit: int) -> bool:
    return named_digits(text) == {digit}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--beams", type=int, default=3)
    parser.add_argument("--out", default=None)
    parser.add_argument("--run", default=None, help="score this trained captioner instead of training one")
    parser.add_argument("--images", type=int, default=None, help="validation images scored (default: all)")
    args = parser.parse_args()

    train_seconds = None
    if args.run is None:
        out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="aigc-bench-captioner-"))
        started = time.perf_counter()
        run = aigc.train("captioner-tiny", overrides=[*SIZE, *QUIET, f"train.max_steps={args.steps}"], out=out / "run").run_dir
        train_seconds = round(time.perf_counter() - started, 1)
    else:
        run = args.run
    model = aigc.load(run, safety=False)
    data = load_dataset(model.info.config.data, model.info.config.model)
    val = data.val.get_batch(torch.arange(min(args.images or len(data.val), len(data.val))))
    train = data.train.get_batch(torch.arange(len(data.train)))
    to_uint8 = lambda images: ((images + 1) * 127.5).round().to(torch.uint8)  # noqa: E731

    consensus = {}
    for digit in range(10):
        options = digit_captions(digit)
        consensus[digit] = max(options, key=lambda c: bleu([c], [[o for o in options if o != c]], tokenizer="zh").score)
    captions, nearest = [], []
    distances = torch.cdist(val["images"].flatten(1), train["images"].flatten(1))  # [V, T]
    for image, neighbour in zip(to_uint8(val["images"]), distances.argmin(dim=1).tolist()):
        captions.append(model.generate(CaptionRequest(image=image[0].numpy(), num_beams=args.beams)).text)
        nearest.append(consensus[int(train["labels"][neighbour])])
    labels = val["labels"].tolist()
    references = [digit_captions(label) for label in labels]
    report = {"run": str(run), "dataset": model.info.config.data.name, "images": len(labels), "steps": model.info.step,
              "train_seconds": train_seconds, "beams": args.beams}
    for name, texts in (("captioner", captions), ("nearest-neighbour caption", nearest)):
        score = bleu(texts, references, tokenizer="zh")
        report[name] = {
            "bleu4": round(score.score, 2),
            "cider_d": round(cider(texts, references, tokenizer="zh").score, 1),
            "accuracy": round(sum(names_the_digit(t, d) for t, d in zip(texts, labels)) / len(labels), 3),
            "examples": [f"{d}: {t}" for t, d in list(zip(texts, labels))[:6]],
        }
    report["bleu_signature"] = score.signature
    report["machine"] = f"{cpu_name()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads, torch {torch.__version__}"
    print(json.dumps(report, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
