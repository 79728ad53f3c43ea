"""Sound models against real held-out data, one command for both kinds of sound run:

- spoken-digit models (WaveGAN, SpecGAN, audio VAE): IS-DigitClassifier and FD-DigitClassifier against the
  real held-out spoken digits, the share of clips heard as their requested digit, and generation speed as a
  real-time factor (seconds of audio made per second of wall time, over the same generation);
- music models (piano-roll VAE, a language model on the chorales' note events): pitch-class histogram
  distance, note density and the share of notes in key against the held-out Bach chorales (aigc.metrics.music).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/audio_scores.py --real RUN_A RUN_B ... [--count N]

`--real` scores real data the same way, the ceiling a generator is compared with: the validation split of
spoken-digits (held-out speakers) against the test split (other held-out speakers) — report ratios to it, as
the published SC09 anchors are on another classifier and scale — and the validation chorales against the test
chorales (C major / A minor like the training data). Each digit run generates `--count` clips (default 1,000;
labels cycling 0..9 for conditional models, seeds 0..count-1) through the one generation path, scored against
the test split (`aigc.metrics.audio.evaluate_audio_run`). Each music run generates `--count` pieces (default
100): a piano-roll VAE's windows, or a language model's texts of `--tokens` new tokens from the prompt `t0`
(temperature 1, stopping at the end of the line), each read as a piece with bad tokens counted; rendering time
is not included for language models (they write text; `aigc render` makes sound). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os

import torch

from aigc.metrics.music import is_music_run
from machine import cpu_name  # benchmarks run as scripts: this folder is on sys.path


def spoken_digits(runs: list[str], args) -> dict:
    from aigc.metrics.audio import evaluate_audio_run, load_digit_classifier, reference_clips, score_clips

    classifier = load_digit_classifier(args.classifier)
    reference, _ = reference_clips(args.dataset, "test", classifier)
    results: dict = {"reference": f"{args.dataset} test split ({len(reference)} clips)"}
    if args.real:
        real, labels = reference_clips(args.dataset, "val", classifier)
        results["real (val split)"] = score_clips(real, reference, classifier, sample_rate=classifier.sample_rate, labels=labels.tolist()).to_dict()
    for run in runs:
        results[run] = evaluate_audio_run(run, count=args.count or 1000, batch_size=args.batch, dataset=args.dataset, classifier=classifier)
    return results


def chorales(runs: list[str], args) -> dict:
    from aigc.data.music import read_chorales
    from aigc.metrics.music import evaluate_music_run, music_scores

    reference = [record["notes"] for record in read_chorales("test")]
    results: dict = {"music reference": f"bach-chorales test split ({len(reference)} chorales, C major / A minor)"}
    if args.real:
        results["real (val chorales)"] = music_scores([record["notes"] for record in read_chorales("val")], reference)
    for run in runs:
        results[run] = evaluate_music_run(run, count=args.count or 100, tokens=args.tokens)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", help="sound run folders or zoo names: spoken-digit or music models")
    parser.add_argument("--real", action="store_true", help="also score real held-out data (the ceiling)")
    parser.add_argument("--count", type=int, default=None, help="clips per digit run (default 1,000), pieces per music run (100)")
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--tokens", type=int, default=300, help="music language models: new tokens per piece")
    parser.add_argument("--dataset", default="spoken-digits")
    parser.add_argument("--classifier", default=None, help="an audio-classifier run (default: the packaged one)")
    args = parser.parse_args()
    torch.manual_seed(0)
    music = [run for run in args.runs if is_music_run(run)]
    speech = [run for run in args.runs if run not in music]
    results: dict = {"machine": f"{cpu_name()}, {os.environ.get('OMP_NUM_THREADS', 'all')} thread(s), torch {torch.__version__}",
                     "load_average_before": os.getloadavg()[0]}
    if speech or not music:  # --real alone scores the spoken digits' ceiling
        results.update(spoken_digits(speech, args))
    if music:
        results.update(chorales(music, args))
    print(json.dumps(results, indent=2, default=float))


if __name__ == "__main__":
    main()
