"""Text sampling speed of the zoo's gpt-shakespeare: tokens/s and chars/s at batch 1 and 8, with and
without the KV cache, and the same work done the way the code did it before (a reference in this file).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/text_sampling.py [--tokens 500] [--rounds 3]

The request is issue 16's: 500 new tokens after "ROMEO:", temperature 0.8, top-k 200, no stop at <eos>.
Batch 8 is `count=8` (seeds seed..seed+7), decoded as the rows of one session; "reference" decodes the
same samples the old way (one sequence at a time, the whole text decoded again at every token), so the
ratio isolates what changed in the decoding path. Every variant must give the same texts (checked).

The machine is shared: variants run in turns, each figure is the best of --rounds; rates per CPU second
(this process) beside wall rates; the load average is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

import aigc
from aigc.generation import decoding
from aigc.generation.text import TextRequest
from machine import cpu_name  # benchmarks run as scripts: this folder is on sys.path


class _OldTracker(decoding._TextTracker):
    """The text tracker as it was: every token decodes all ids so far (O(n^2) over a sample)."""

    def add(self, token_id: int) -> bool:
        self.ids.append(token_id)
        self.text = self.tokenizer.decode(self.ids)
        hits = [index for index in (self.text.find(s) for s in self.stop) if index >= 0]
        if hits:
            self.text = self.text[: min(hits)]
            return True
        return False


def reference(model, request: TextRequest, use_cache: bool) -> list[str]:
    """count samples one at a time through `decoding.sample` with the old tracker."""
    original = decoding._TextTracker
    decoding._TextTracker = _OldTracker
    try:
        with torch.inference_mode():
            return [model._finish(model._sample(request, None, i, use_cache=use_cache)).text for i in range(request.count)]
    finally:
        decoding._TextTracker = original


def timed(function) -> tuple[float, float, list[str]]:
    wall, cpu = time.perf_counter(), time.process_time()
    texts = function()
    return time.perf_counter() - wall, time.process_time() - cpu, texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prompt", default="ROMEO:")
    parser.add_argument("--skip-no-cache", action="store_true", help="only the KV-cache variants (the slow ones take most of the time)")
    args = parser.parse_args()
    model = aigc.load("gpt-shakespeare").module
    config = model.config
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; gpt-shakespeare {config.num_layers} layers x {config.embedding_dim}, "
          f"context {config.context_length}, {config.tokenizer_kind} vocabulary {config.vocab_size}")
    load_before = os.getloadavg()
    variants = {}
    for batch in (1, 8):
        request = TextRequest(prompt=args.prompt, max_tokens=args.tokens, temperature=0.8, top_k=200, stop_at_eos=False, count=batch, seed=0)
        for use_cache in (True,) if args.skip_no_cache else (True, False):
            name = f"batch {batch}, {'cache' if use_cache else 'no cache'}"
            variants[f"{name}, reference"] = (lambda r=request, c=use_cache: reference(model, r, c))
            variants[f"{name}, now"] = (lambda r=request, c=use_cache: model.generate(r, use_cache=c).texts)
    best: dict[str, tuple[float, float, int]] = {}
    texts: dict[str, list[str]] = {}
    for round_ in range(args.rounds):
        for name, run in variants.items():
            if "no cache" in name and round_ > 0:
                continue  # the slow ones once: they are 3-5x slower and only frame the cache's gain
            wall, cpu, produced = timed(run)
            tokens = args.tokens * len(produced)
            old = best.get(name, (float("inf"), float("inf"), 0))
            best[name] = (min(old[0], wall), min(old[1], cpu), sum(map(len, produced)))
            texts[name] = produced
            print(f"  round {round_ + 1} {name:<32} {tokens / wall:8.0f} tok/s wall {tokens / cpu:8.0f} tok/s per CPU s", flush=True)
    print(f"{'variant':<32} {'tok/s wall':>10} {'tok/s CPU':>10} {'chars/s CPU':>12} {'x reference (CPU)':>18} same texts")
    summary = {}
    for name, (wall, cpu, chars) in best.items():
        tokens = args.tokens * len(texts[name])
        ref = name.replace(", now", ", reference")
        ratio = best[ref][1] / cpu
        same = texts[name] == texts[ref]
        print(f"{name:<32} {tokens / wall:>10.0f} {tokens / cpu:>10.0f} {chars / cpu:>12.0f} {ratio:>18.2f} {same}")
        summary[name] = {"tokens_per_s_wall": round(tokens / wall), "tokens_per_s_cpu": round(tokens / cpu), "chars_per_s_cpu": round(chars / cpu), "same_texts": same}
    one = best["batch 1, cache, reference"][1] / args.tokens
    eight = best["batch 8, cache, now"][1] / (8 * args.tokens)
    print(f"count=8 now vs 8 samples the old way (cache): {one / eight:.2f}x tokens per CPU second")
    print(json.dumps({"results": summary, "threads": torch.get_num_threads(),
                      "load_average": [round(x, 2) for x in (*load_before, *os.getloadavg())], "tokens": args.tokens, "rounds": args.rounds}))


if __name__ == "__main__":
    main()
