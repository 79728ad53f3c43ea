"""Audio models: IS-DigitClassifier and FD-DigitClassifier against the real held-out spoken digits, the
share of clips heard as their requested digit, and generation speed as a real-time factor.

    OMP_NUM_THREADS=1 AIGC_CACHE_DIR=... .venv/bin/python benchmarks/audio_scores.py --real RUN_A RUN_B ...

`--real` scores real clips the same way: the validation split of spoken-digits (held-out speakers) against
the test split (other held-out speakers), the ceiling a generator is compared with (report ratios to it,
as the published SC09 anchors are on another classifier and scale). Each run generates `--count` clips
(labels cycling 0..9 for conditional models, seeds 0..count-1) through the one generation path and is
scored against the test split. Real-time factor = seconds of audio made per second of wall time, timed
over the same generation (one process, batches of `--batch`). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch

import aigc
from aigc.config import DataConfig
from aigc.data import load_dataset
from aigc.generation.requests import AudioRequest
from aigc.metrics.audio import load_digit_classifier, score_clips


def split_clips(name: str, split: str, sample_rate: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    geometry = type("Geometry", (), {"sample_rate": sample_rate, "sample_length": length})()
    data = getattr(load_dataset(DataConfig(name=name), geometry), split)
    return data.clips.numpy().astype(np.float32) / 32768, data.labels.numpy()


def generate(run: str, count: int, batch: int) -> tuple[np.ndarray, list[int] | None, int, float, dict]:
    model = aigc.load(run)
    waveforms, labels, seconds = [], [], 0.0
    for start in range(0, count, batch):
        size = min(batch, count - start)
        conditional = getattr(model.module, "num_classes", None)
        request = AudioRequest(count=size, seed=start, labels=[(start + i) % 10 for i in range(size)] if conditional else None)
        began = time.perf_counter()
        clip = model.generate(request)
        seconds += time.perf_counter() - began
        waveforms.append(clip.waveforms)
        labels += clip.labels or []
    info = {"step": model.info.step, "family": model.info.family, "parameters": sum(p.numel() for name, p in model.module.named_parameters() if not name.startswith("discriminator."))}
    return np.concatenate(waveforms), labels or None, clip.sample_rate, seconds, info


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
    reference, _ = split_clips(args.dataset, "test", classifier.sample_rate, classifier.sample_length)
    results: dict = {"machine": f"{platform.processor() or platform.machine()}, {os.environ.get('OMP_NUM_THREADS', 'all')} thread(s), torch {torch.__version__}", "reference": f"{args.dataset} test split ({len(reference)} clips)"}
    if args.real:
        real, labels = split_clips(args.dataset, "val", classifier.sample_rate, classifier.sample_length)
        scores = score_clips(real, reference, classifier, sample_rate=classifier.sample_rate, labels=labels.tolist())
        results["real (val split)"] = scores.to_dict()
    for run in args.runs:
        waveforms, labels, rate, seconds, info = generate(run, args.count, args.batch)
        scores = score_clips(waveforms, reference, classifier, sample_rate=rate, labels=labels)
        audio_seconds = waveforms.shape[0] * waveforms.shape[1] / rate
        results[run] = {**scores.to_dict(), **info, "generation_seconds": round(seconds, 2), "real_time_factor": round(audio_seconds / seconds, 1)}
    print(json.dumps(results, indent=2, default=float))


if __name__ == "__main__":
    main()
