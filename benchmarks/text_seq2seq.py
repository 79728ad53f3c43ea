"""ROUGE-L and BLEU of the seq2seq tasks on held-out pairs, next to trivial baselines.

    .venv/bin/python benchmarks/text_seq2seq.py --preset seq2seq-tang-titles --minutes 10
    .venv/bin/python benchmarks/text_seq2seq.py RUN_DIR --count 500 --beams 4
    .venv/bin/python benchmarks/text_seq2seq.py GPT_RUN_DIR --count 500 --beams 4 --last   # gpt-tang-titles

Without RUN_DIR the preset is trained first for --minutes (through the real loop). Then the first
--count validation pairs (the last 10% of the pairs, never trained on; `--last`: the last --count) are
decoded with beam search and scored with aigc.metrics.text. A seq2seq model reads the source; a language
model fine-tuned on the pairs (gpt-shakespeare-dialogue, gpt-tang-titles) continues `pair_prompt(source)`
(the source and a blank line) until <eos>. `--last` matters for a GPT pretrained on the corpus the pairs
come from: its pretraining text (the first 90% of the characters) ends after the first validation pairs
(tang-poems: all of the first 500 titles are in it), while the last pairs are in no training text.
Scores:
    tang-titles           ROUGE-L F1 over characters, BLEU with sacrebleu's "zh" tokenizer
    shakespeare-dialogue  BLEU with sacrebleu's "13a" tokenizer, ROUGE-L F1 over whitespace words
Baselines on the same pairs: the poem's first line as its title, or the turn itself as its reply
("copy the input"), and the training set's most frequent target ("always say the commonest thing").
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

import torch

import aigc
from aigc.config import load_config
from aigc.data import load_dataset
from aigc.data.text import PAIR_SEPARATOR, pair_prompt
from aigc.generation.text import TextRequest
from aigc.metrics.text import bleu, rouge_l
from aigc.training.loop import fit

SETTINGS = {  # dataset -> (BLEU tokenizer, ROUGE-L tokenizer, name of the copy baseline)
    "tang-titles": ("zh", "chars", "first line of the poem"),
    "shakespeare-dialogue": ("13a", "whitespace", "copy the turn"),
}


def copy_baseline(dataset: str, source: str) -> str:
    if dataset == "tang-titles":
        return source.split("\n")[0]
    return source


def score(dataset: str, hypotheses: list[str], references: list[str]) -> dict[str, float]:
    bleu_tokenizer, rouge_tokenizer, _ = SETTINGS.get(dataset, ("13a", "whitespace", ""))
    # Empty hypotheses are allowed (they score 0); sacrebleu and ROUGE-L accept them.
    return {
        "rouge_l_f1": round(100 * rouge_l(hypotheses, references, tokenizer=rouge_tokenizer).fmeasure, 2),
        "bleu": round(bleu(hypotheses, references, tokenizer=bleu_tokenizer).score, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", nargs="?", default=None)
    parser.add_argument("--preset", default="seq2seq-tang-titles")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--count", type=int, default=500, help="held-out pairs decoded and scored")
    parser.add_argument("--beams", type=int, default=4)
    parser.add_argument("--show", type=int, default=5, help="examples printed")
    parser.add_argument("--last", action="store_true", help="score the last --count validation pairs instead of the first")
    parser.add_argument("--skip", type=int, default=0, help="start after this many validation pairs (a development slice to choose decoding on)")
    parser.add_argument("--decode", action="append", default=[], metavar="KEY=VALUE",
                        help="more TextRequest settings, e.g. length_penalty=2 or, with --beams 1, temperature=0.8 (pair i uses seed i)")
    parser.add_argument("--max-tokens", type=int, default=None, help="a language model's reply length limit (default: half its context)")
    args = parser.parse_args()

    train_seconds = None
    if args.run is None:
        config = load_config(args.preset, args.set + [f"train.max_minutes={args.minutes}", "train.progress=false", "train.tensorboard=false"])
        out = Path(tempfile.mkdtemp(prefix="aigc-bench-")) / "run"
        started = time.perf_counter()
        result = fit(config, out)
        train_seconds = time.perf_counter() - started
        run = result.run_dir
    else:
        run = Path(args.run)
    model = aigc.load(run, safety=False)
    dataset = model.info.config.data.name
    data = load_dataset(model.info.config.data, model.info.config.model)
    held_out = data.val.texts[-args.count :] if args.last else data.val.texts[args.skip : args.skip + args.count]
    sources = [source for source, _ in held_out]
    references = [target for _, target in held_out]

    started = time.perf_counter()
    hypotheses = []
    settings = model.module.config
    language_model = not hasattr(settings, "max_target_length")
    max_tokens = (args.max_tokens or settings.context_length // 2) if language_model else settings.max_target_length
    decode = {key: json.loads(value) for key, value in (item.split("=", 1) for item in args.decode)}
    for index, source in enumerate(sources):
        # A language model's reply ends at <eos> (what it was fine-tuned to emit) or, failing that, at a blank line.
        prompt, stop = (pair_prompt(source), [PAIR_SEPARATOR]) if language_model else (source, [])
        request = TextRequest(prompt=prompt, stop=stop, num_beams=args.beams, max_tokens=max_tokens, seed=index, **decode)
        hypotheses.append(model.generate(request).text.strip())
    decode_seconds = time.perf_counter() - started

    common = Counter(target for _, target in data.train.texts).most_common(1)[0][0]
    report = {
        "run": str(run),
        "dataset": dataset,
        "held_out_pairs": f"{len(held_out)}, the {'last' if args.last else ('first' if not args.skip else f'next after {args.skip}')} of {len(data.val)} validation pairs",
        "max_tokens": max_tokens,
        "beams": args.beams,
        "decode": decode,
        "steps": model.info.step,
        "train_seconds": None if train_seconds is None else round(train_seconds, 1),
        "decode_seconds": round(decode_seconds, 1),
        "threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "model": score(dataset, hypotheses, references),
        f"baseline: {SETTINGS.get(dataset, ('', '', 'copy the source'))[2]}": score(dataset, [copy_baseline(dataset, s) for s in sources], references),
        f"baseline: most frequent training target ({common!r})": score(dataset, [common] * len(sources), references),
        "examples": [{"source": s, "reference": r, "generated": h} for s, r, h in list(zip(sources, references, hypotheses))[: args.show]],
    }
    print(json.dumps(report, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
