"""GPT generation speed with and without the KV cache, and their ratio.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/text_kv_cache.py RUN_DIR --tokens 256,512
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/text_kv_cache.py --preset gpt-shakespeare --tokens 256,512

With a run folder the trained model is used; with --preset the preset's architecture is built with its
initial weights (speed does not depend on the weights; the vocabulary comes from the preset's data).
Both modes generate exactly the same tokens (greedy, no stop at <eos>; tests/test_text_models.py checks
the equality); the cached one runs each new token through the network alone, the other recomputes the
whole visible context at every step. Each figure is the best of --repeats runs.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

import aigc
from aigc.config import load_config
from aigc.data import load_dataset
from aigc.generation.text import TextRequest
from aigc.loading import build_model
from aigc.training.loop import _fill_from_data


def build(args) -> torch.nn.Module:
    if args.run:
        return aigc.load(args.run).module
    config = load_config(args.preset)
    _fill_from_data(config, load_dataset(config.data, config.model))
    torch.manual_seed(0)
    return build_model(config).eval()


def tokens_per_second(model, tokens: int, use_cache: bool, repeats: int, prompt: str) -> tuple[float, list[str]]:
    request = TextRequest(prompt=prompt, max_tokens=tokens, temperature=0, stop_at_eos=False)
    best, texts = float("inf"), []
    for _ in range(repeats):
        started = time.perf_counter()
        sample = model.generate(request, use_cache=use_cache)
        best = min(best, time.perf_counter() - started)
        texts = sample.texts
        assert sample.token_counts[0] == tokens
    return tokens / best, texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", nargs="?", default=None, help="a trained GPT run folder")
    parser.add_argument("--preset", default="gpt-shakespeare")
    parser.add_argument("--tokens", default="256,512")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--prompt", default="ROMEO:")
    args = parser.parse_args()
    model = build(args)
    config = model.config
    print(f"model: {config.num_layers} layers x {config.embedding_dim} wide, context {config.context_length}; "
          f"threads {torch.get_num_threads()} (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}), torch {torch.__version__}")
    print(f"{'new tokens':>10} {'cache tok/s':>12} {'no-cache tok/s':>15} {'ratio':>7}  same text")
    for count in map(int, args.tokens.split(",")):
        cached, cached_texts = tokens_per_second(model, count, True, args.repeats, args.prompt)
        uncached, uncached_texts = tokens_per_second(model, count, False, args.repeats, args.prompt)
        print(f"{count:>10} {cached:>12.0f} {uncached:>15.0f} {cached / uncached:>7.2f}  {cached_texts == uncached_texts}", flush=True)


if __name__ == "__main__":
    main()
