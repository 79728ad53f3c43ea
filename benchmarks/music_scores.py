"""Music models against held-out Bach chorales: pitch-class histogram distance, note density and the share
of notes in key (aigc.metrics.music), for piano-roll VAE runs and chorale language-model runs.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/music_scores.py --real ROLL_RUN LM_RUN --count 100

Reference: the test chorales (never trained on), in C major / A minor like the training data. `--real`
also scores the validation chorales against them (the ceiling). A piano-roll run generates `--count`
windows (seeds 0..count-1) through the one generation path; their notes come from the clips' note-event
scores. A language-model run generates `--count` texts of `--tokens` new tokens each (seeds 0.., from the
prompt `t0`, temperature 1, stopping at the end of the line), each read as a piece; bad tokens are counted.
Rendering time is not included for language models (they write text; `aigc render` makes sound).
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform

import torch

from aigc.data.music import read_chorales
from aigc.metrics.music import evaluate_music_run, music_scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", help="pianoroll-vae or chorale language-model runs (or zoo names)")
    parser.add_argument("--real", action="store_true", help="also score the validation chorales (the ceiling)")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--tokens", type=int, default=300, help="language models: new tokens per piece")
    args = parser.parse_args()
    torch.manual_seed(0)
    reference = [record["notes"] for record in read_chorales("test")]
    results: dict = {"machine": f"{platform.processor() or platform.machine()}, {os.environ.get('OMP_NUM_THREADS', 'all')} thread(s), torch {torch.__version__}",
                     "load_average_before": os.getloadavg()[0], "reference": f"bach-chorales test split ({len(reference)} chorales, C major / A minor)"}
    if args.real:
        results["real (val chorales)"] = music_scores([record["notes"] for record in read_chorales("val")], reference)
    for run in args.runs:
        results[run] = evaluate_music_run(run, count=args.count, tokens=args.tokens)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
