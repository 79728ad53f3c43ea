"""Audio models: IS-DigitClassifier and FD-DigitClassifier against the real held-out spoken digits, the
share of clips heard as their requested digit, and generation speed as a real-time factor.

    OMP_NUM_THREADS=1 AIGC_CACHE_DIR=... .venv/bin/python benchmarks/audio_scores.py --real RUN_A RUN_B ...

`--real` scores real clips the same way: the validation split of spoken-digits (held-out speakers) against
the test split (other held-out speakers), the ceiling a generator is compared with (report ratios to it,
as the published SC09 anchors are on another classifier and scale). Each run generates `--count` clips
(labels cycling 0..9 for conditional models, seeds 0..count-1) through the one generation path and is
scored against the test split (`aigc.metrics.audio.evaluate_audio_run`). Real-time factor = seconds of
audio made per second of wall time, timed over the same generation (one process, batches of `--batch`).
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform

import torch

from aigc.metrics.audio import evaluate_audio_run, load_digit_classifier, reference_clips, score_clips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", help="audio run folders or zoo names")
    parser.add_argument("--real", action="store_true", help="also score real held-out clips (the ceiling)")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--dataset", default="spoken-digits")
    parser.add_argument("--classifier", default=None, help="an audio-classifier run (default: the packaged one)")
    args = parser.parse_args()

    torch.manual_seed(0)
    classifier = load_digit_classifier(args.classifier)
    reference, _ = reference_clips(args.dataset, "test", classifier)
    results: dict = {"machine": f"{platform.processor() or platform.machine()}, {os.environ.get('OMP_NUM_THREADS', 'all')} thread(s), torch {torch.__version__}", "reference": f"{args.dataset} test split ({len(reference)} clips)"}
    if args.real:
        real, labels = reference_clips(args.dataset, "val", classifier)
        scores = score_clips(real, reference, classifier, sample_rate=classifier.sample_rate, labels=labels.tolist())
        results["real (val split)"] = scores.to_dict()
    for run in args.runs:
        results[run] = evaluate_audio_run(run, count=args.count, batch_size=args.batch, dataset=args.dataset, classifier=classifier)
    print(json.dumps(results, indent=2, default=float))


if __name__ == "__main__":
    main()
