"""What generated spoken-digit clips sound like, for a machine with no loudspeaker: envelopes, spectra and
the digit classifier's votes, for sound runs (or zoo names) and, with `--real`, real held-out clips.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/audio_listen.py RUN_A RUN_B ... [--real] [--count 50]

Per run, `--count` clips (labels cycling 0..9 for conditional models, seeds 0..count-1) are described by:

- `envelope`: the median over clips of the RMS level in eight 128 ms windows, as a share of each clip's
  loudest window (a real word: near 0 at the ends, 1 in the middle);
- `floor_share`: the median over clips of the quietest 32 ms frame's RMS divided by the loudest frame's (a
  real clip has silence around the word, about 0.00; a constant hiss shows as a large floor);
- `peak`: the median absolute peak (full scale 1.0); `centroid_hz`: the median spectral centroid of the
  loudest quarter of each clip's frames; `flatness`: the median spectral flatness of those frames
  (geometric over arithmetic mean of the power spectrum: about 1 for white noise, near 0 for voiced sound);
- `votes`: how many clips the packaged digit classifier hears as each digit, and `heard_as_requested`.

Prints one JSON object per line: `{"clips": name, ...}`.
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def describe(waveforms: np.ndarray, sample_rate: int, probabilities: np.ndarray, labels: list[int] | None) -> dict:
    frame = int(0.032 * sample_rate)
    clips = waveforms[:, : waveforms.shape[1] // frame * frame]
    frames = clips.reshape(len(clips), -1, frame)  # [N, F, frame]
    rms = np.sqrt((frames.astype(np.float64) ** 2).mean(axis=2)) + 1e-12  # [N, F]
    floor = np.median(rms.min(axis=1) / rms.max(axis=1))
    windows = np.array_split(rms, 8, axis=1)
    levels = np.stack([np.sqrt((w**2).mean(axis=1)) for w in windows], axis=1)  # [N, 8]
    envelope = np.median(levels / levels.max(axis=1, keepdims=True), axis=0)
    power = np.abs(np.fft.rfft(frames * np.hanning(frame), axis=2)) ** 2 + 1e-20  # [N, F, bins]
    freqs = np.fft.rfftfreq(frame, 1 / sample_rate)
    loud = np.argsort(rms, axis=1)[:, -max(1, rms.shape[1] // 4) :]  # each clip's loudest quarter of frames
    chosen = np.take_along_axis(power, loud[:, :, None], axis=1)  # [N, F/4, bins]
    centroid = (chosen * freqs).sum(axis=2) / chosen.sum(axis=2)
    flatness = np.exp(np.log(chosen).mean(axis=2)) / chosen.mean(axis=2)
    votes = np.bincount(probabilities.argmax(axis=1), minlength=probabilities.shape[1])
    result = {
        "count": len(waveforms),
        "peak": round(float(np.median(np.abs(waveforms).max(axis=1))), 3),
        "floor_share": round(float(floor), 3),
        "envelope": [round(float(v), 2) for v in envelope],
        "centroid_hz": round(float(np.median(centroid))),
        "flatness": round(float(np.median(flatness)), 3),
        "votes": {str(digit): int(count) for digit, count in enumerate(votes)},
    }
    if labels is not None:
        result["heard_as_requested"] = round(float((probabilities.argmax(axis=1) == np.asarray(labels)).mean()), 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", help="spoken-digit sound runs or zoo names")
    parser.add_argument("--real", action="store_true", help="also describe real clips of the validation split")
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--dataset", default="spoken-digits")
    args = parser.parse_args()

    from aigc.generation.requests import AudioRequest
    from aigc.loading import load
    from aigc.metrics.audio import classify, load_digit_classifier, reference_clips

    classifier = load_digit_classifier()
    results: dict = {}  # name -> description, printed one line each
    if args.real:
        real, labels = reference_clips(args.dataset, "val", classifier)
        pick = np.random.default_rng(0).choice(len(real), size=min(args.count, len(real)), replace=False)
        _, probabilities = classify(classifier, real[pick], classifier.sample_rate)
        results["real (val split)"] = describe(real[pick], classifier.sample_rate, probabilities, labels[pick].tolist())
    for run in args.runs:
        model = load(run)
        classes = getattr(model.module, "num_classes", None)
        labels = [i % classes for i in range(args.count)] if classes else None
        clip = model.generate(AudioRequest(count=args.count, seed=0, labels=labels))
        _, probabilities = classify(classifier, clip.waveforms, clip.sample_rate)
        results[f"{run} (step {model.info.step})"] = describe(clip.waveforms, clip.sample_rate, probabilities, labels)
    for name, description in results.items():
        print(json.dumps({"clips": name, **description}))


if __name__ == "__main__":
    main()
