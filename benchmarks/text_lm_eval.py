"""Validation nats per character of a trained language model (a run folder or a zoo name), on its whole
validation split, next to the same network untrained.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/text_lm_eval.py gpt-shakespeare gpt-tang
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/text_lm_eval.py /work/zoo-runs/gpt-tang --untrained

The split is the one training validated on (the last data.val_fraction of the corpus, never trained on),
rebuilt from the run's own config and tokenizer, and scored exactly (every token after the first once,
non-overlapping windows) by `aigc.models.text.common.evaluate_split` — the figure text_lm_budget.py reports.
`--untrained` also scores a freshly initialised network of the same config (seed 0): the floor a trained
model must clear. Prints one JSON object: model -> scores.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

import aigc
from aigc.data import load_dataset
from aigc.loading import build_model
from aigc.models.text.common import evaluate_split
from machine import cpu_name  # benchmarks run as scripts: this folder is on sys.path


def score(module: torch.nn.Module, split, batch_size: int) -> dict[str, float]:
    """evaluate_split's figures (nats per token and per character, bpc, perplexity, counts), rounded."""
    started = time.perf_counter()
    scores = {key: round(value, 4) for key, value in evaluate_split(module, split, batch_size=batch_size).items()}
    return {**scores, "eval_seconds": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="run folders, checkpoint folders or zoo names")
    parser.add_argument("--untrained", action="store_true", help="also score the same network freshly initialised")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    report = {
        "threads": torch.get_num_threads(),
        "machine": f"{cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "models": {},
    }
    for name in args.models:
        loaded = aigc.load(name, safety=False)
        config = loaded.info.config
        data = load_dataset(config.data, config.model)
        entry = {"step": loaded.info.step, "data": config.data.name, "val_fraction": config.data.val_fraction,
                 **score(loaded.module, data.val, args.batch_size)}
        if args.untrained:
            torch.manual_seed(0)
            entry["untrained"] = score(build_model(config), data.val, args.batch_size)
        report["models"][name] = entry
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
