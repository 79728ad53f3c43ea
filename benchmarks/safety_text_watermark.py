"""Text watermark (aigc/safety/watermark/text.py) on the zoo's gpt-shakespeare: detection z-scores of
marked and unmarked samples, and the quality cost, in nats per character of the samples scored by the
same model without the mark (how much less likely the model finds its own marked text).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/safety_text_watermark.py [--samples 10] [--tokens 150]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

import aigc
from aigc.generation.pipeline import GenerationPolicy
from aigc.generation.text import TextRequest
from aigc.safety.watermark.text import DELTA, GAMMA, TextWatermark, detect_text

KEY = "benchmark-text-key"
PROMPTS = ["ROMEO:", "KING HENRY:", "First Citizen:\n", "O, ", "JULIET:\nWhat "]


@torch.no_grad()
def nats_per_char(model, prompt: str, text: str) -> float:
    """The model's negative log-likelihood of `text` after `prompt`, per character (no watermark)."""
    module = model.module
    prompt_ids = module.prompt_ids(prompt)
    ids = module.tokenizer.encode(text)
    context = module.config.context_length
    sequence = torch.tensor([prompt_ids + ids])[:, -context - 1 :]
    logits = module(sequence[:, :-1])  # [1, T, vocab]
    targets = sequence[:, 1:]
    losses = F.cross_entropy(logits[0].float(), targets[0], reduction="none")[-len(ids) :]
    return float(losses.sum()) / max(1, len(text))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--tokens", type=int, default=150)
    args = parser.parse_args()
    model = aigc.load("gpt-shakespeare", safety=False)
    vocab = model.module.config.vocab_size
    mark = TextWatermark(KEY)
    policies = {"unmarked": None, f"marked (gamma {GAMMA}, delta {DELTA})": GenerationPolicy(logits=(mark,), after=(mark.record,))}
    started = time.perf_counter()
    print(f"gpt-shakespeare ({vocab}-token BPE), {args.samples} samples of {args.tokens} tokens, temperature 0.8, per setting")
    print("| text | z mean | z min | z max | detected (z >= 4) | nats/char under the model (mean +- s.e.) |")
    print("|---|---|---|---|---|---|")
    for name, policy in policies.items():
        zs, costs = [], []
        for index in range(args.samples):
            prompt = PROMPTS[index % len(PROMPTS)]
            sample = model.generate(TextRequest(prompt=prompt, max_tokens=args.tokens, seed=index, temperature=0.8), policy=policy)
            detection = detect_text(model.module.tokenizer.encode(sample.text), vocab, KEY)
            zs.append(detection.z)
            costs.append(nats_per_char(model, prompt, sample.text))
        zs_array = np.array(zs)
        print(f"| {name} | {zs_array.mean():.2f} | {zs_array.min():.2f} | {zs_array.max():.2f} | {int((zs_array >= 4).sum())}/{len(zs)} | {np.mean(costs):.3f} +- {np.std(costs, ddof=1) / np.sqrt(len(costs)):.3f} |")
    short = [detect_text(model.module.tokenizer.encode(model.generate(TextRequest(prompt="ROMEO:", max_tokens=n, seed=99, temperature=0.8), policy=policies[list(policies)[1]]).text), vocab, KEY).z for n in (25, 50, 100)]
    print(f"z of one marked sample by length: 25 tokens {short[0]:.2f}, 50 tokens {short[1]:.2f}, 100 tokens {short[2]:.2f}")
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
