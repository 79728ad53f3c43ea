"""Audio watermark robustness (aigc/safety/watermark/audio.py): detection rate and z per attack on marked
clips, and false positives on unmarked clips and with other keys.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/safety_audio_watermark.py [--clips 24] [--strength 0.1]

Clips (16 kHz, about 1 s each, as the spoken-digits models make them): espeak-ng speaking digits and short
words in English and Mandarin at several speeds and pitches, synthetic music (decaying chords and a melody),
and band-limited noise. Encoders are the Debian ones: lame (MP3) and sox (Ogg Vorbis); an attack whose
tool is missing is reported as skipped (apt-get install lame sox).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
from scipy import signal

from aigc.safety.watermark import audio as mark

RATE = 16000
KEY = "benchmark-audio-key-01"
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "hello there", "good morning"]
MANDARIN = ["零", "一", "二", "三", "四", "五", "六", "七", "八", "九", "你好", "早上好"]


def speech(count: int) -> list[tuple[str, np.ndarray]]:
    if shutil.which("espeak-ng") is None:
        print("(speech skipped: apt-get install espeak-ng)", file=sys.stderr)
        return []
    clips = []
    for index in range(count):
        voice, words = ("en", WORDS) if index % 2 == 0 else ("cmn", MANDARIN)
        text = words[index % len(words)]
        wav = subprocess.run(["espeak-ng", "-v", voice, "-s", str(130 + 15 * (index % 5)), "-p", str(30 + 8 * (index % 6)), "--stdout", text],
                             capture_output=True, check=True).stdout
        samples, rate = soundfile.read(io.BytesIO(wav), dtype="float32")
        samples = signal.resample_poly(samples, RATE // 1000, rate // 1000) if rate != RATE else samples
        clips.append((f"speech {voice}", np.pad(samples, (0, max(0, RATE - len(samples))))[: int(1.5 * RATE)].astype(np.float32)))
    return clips


def music(count: int) -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(7)
    t = np.arange(RATE) / RATE
    clips = []
    for index in range(count):
        root = 110 * 2 ** (rng.integers(0, 12) / 12)
        if index % 2 == 0:  # a decaying major chord with a few harmonics
            tone = sum(np.sin(2 * np.pi * root * ratio * h * t) / h for ratio in (1, 1.26, 1.5) for h in (1, 2, 3)) * np.exp(-2.5 * t)
        else:  # a melody of eighth notes
            notes = root * 2 ** (rng.choice([0, 2, 4, 5, 7, 9, 12], 8) / 12)
            tone = np.concatenate([np.sin(2 * np.pi * f * t[: RATE // 8]) * np.exp(-8 * t[: RATE // 8]) for f in notes])
        clips.append(("music", (0.3 * tone / np.abs(tone).max()).astype(np.float32)))
    return clips


def noise(count: int) -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(11)
    sos = signal.butter(4, [100, 6000], "bandpass", fs=RATE, output="sos")
    return [("noise", (0.1 * signal.sosfilt(sos, rng.normal(size=RATE))).astype(np.float32)) for _ in range(count)]


def _through(command: list[str], samples: np.ndarray, suffix: str) -> tuple[np.ndarray, int] | None:
    if shutil.which(command[0]) is None:
        return None
    with tempfile.TemporaryDirectory() as folder:
        source, out = Path(folder) / "in.wav", Path(folder) / f"out{suffix}"
        soundfile.write(source, samples, RATE, subtype="PCM_16")
        subprocess.run([part.format(source=source, out=out) for part in command], check=True, capture_output=True)
        decoded, rate = soundfile.read(out, dtype="float32")
    return decoded, rate


def _noise(samples: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    power = np.mean(samples.astype(np.float64) ** 2)
    return samples + np.random.default_rng(seed).normal(0, np.sqrt(power / 10 ** (snr_db / 10)), len(samples))


ATTACKS = {
    "none": lambda x: (x, RATE),
    "16 kHz -> 8 kHz -> 16 kHz": lambda x: (signal.resample_poly(signal.resample_poly(x, 1, 2), 2, 1), RATE),
    "resample to 22.05 kHz": lambda x: (signal.resample_poly(x, 441, 320), 22050),
    "resample to 44.1 kHz": lambda x: (signal.resample_poly(x, 441, 160), 44100),
    "MP3 128 kbps (lame)": lambda x: _through(["lame", "--quiet", "-b", "128", "{source}", "{out}"], x, ".mp3"),
    "MP3 64 kbps (lame)": lambda x: _through(["lame", "--quiet", "-b", "64", "{source}", "{out}"], x, ".mp3"),
    "MP3 32 kbps (lame)": lambda x: _through(["lame", "--quiet", "-b", "32", "{source}", "{out}"], x, ".mp3"),
    "Ogg Vorbis q2 (sox)": lambda x: _through(["sox", "{source}", "-C", "2", "{out}"], x, ".ogg"),
    "Ogg Vorbis q0 (sox)": lambda x: _through(["sox", "{source}", "-C", "0", "{out}"], x, ".ogg"),
    "white noise, SNR 20 dB": lambda x: (_noise(x, 20, 1), RATE),
    "white noise, SNR 10 dB": lambda x: (_noise(x, 10, 2), RATE),
    "trim 0.2 s start, 0.1 s end": lambda x: (x[int(0.2 * RATE) : len(x) - int(0.1 * RATE)], RATE),
    "first 0.5 s only": lambda x: (x[: RATE // 2], RATE),
    "low-pass 3 kHz": lambda x: (signal.sosfilt(signal.butter(6, 3000, fs=RATE, output="sos"), x), RATE),
    "gain x0.3": lambda x: (0.3 * x, RATE),
    "MP3 64 kbps + 8 kHz + noise 20 dB": lambda x: (lambda coded: None if coded is None else (_noise(signal.resample_poly(signal.resample_poly(coded[0], 1, 2), 2, 1), 20, 3), coded[1]))(ATTACKS["MP3 64 kbps (lame)"](x)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=24, help="speech clips (music and noise: a quarter each)")
    parser.add_argument("--strength", type=float, default=mark.STRENGTH)
    parser.add_argument("--keys", type=int, default=20, help="other keys tried on each marked clip and each unmarked one")
    args = parser.parse_args()
    started = time.process_time()
    clips = speech(args.clips) + music(max(1, args.clips // 4)) + noise(max(1, args.clips // 4))
    marked = [(kind, clip, mark.embed(clip, RATE, KEY, args.strength)) for kind, clip in clips]
    snrs = [10 * np.log10(np.sum(clip.astype(np.float64) ** 2) / np.sum((m.astype(np.float64) - clip) ** 2)) for _, clip, m in marked]
    print(f"{len(clips)} clips ({', '.join(f'{k} {sum(1 for c in clips if c[0] == k)}' for k in dict.fromkeys(c[0] for c in clips))}); "
          f"strength {args.strength}: mark {np.mean(snrs):.1f} dB below the sound (min {np.min(snrs):.1f})\n")
    print("| attack | detected | z mean | z min | unmarked detected | unmarked z max |")
    print("|---|---|---|---|---|---|")
    unmarked_tests = unmarked_found = 0
    for name, attack in ATTACKS.items():
        found, zs, plain_found, plain_zs = 0, [], 0, []
        skipped = False
        for kind, clip, m in marked:
            result = attack(m)
            if result is None:
                skipped = True
                break
            detection = mark.detect(*result, KEY)
            found += detection.present
            zs.append(detection.z)
            plain = mark.detect(*attack(clip), KEY)
            plain_found += plain.present
            plain_zs.append(plain.z)
        if skipped:
            print(f"| {name} | skipped (encoder missing) | | | | |")
            continue
        unmarked_tests += len(plain_zs)
        unmarked_found += plain_found
        print(f"| {name} | {found}/{len(zs)} | {np.mean(zs):.1f} | {np.min(zs):.1f} | {plain_found}/{len(plain_zs)} | {np.max(plain_zs):.1f} |")
    other = [mark.detect(m, RATE, f"other-key-{index:03d}") for _, _, m in marked for index in range(args.keys)]
    strangers = [mark.detect(clip, RATE, f"other-key-{index:03d}") for _, clip, _ in marked for index in range(args.keys)]
    tested = other + strangers
    z_all = np.array([d.z for d in tested])
    print(f"\nfalse positives: unmarked clips under every attack {unmarked_found}/{unmarked_tests}; "
          f"{args.keys} other keys on each marked and unmarked clip {sum(d.present for d in tested)}/{len(tested)} "
          f"(z {z_all.mean():.2f} +- {z_all.std():.2f}, max {z_all.max():.2f}; present needs a bound <= {mark.FALSE_POSITIVE_LIMIT:.0e}, z >= 6.3)")
    seconds = 1.0
    probe = marked[0][2][:RATE]
    begin = time.perf_counter()
    for _ in range(20):
        mark.detect(probe, RATE, KEY)
    detect_ms = (time.perf_counter() - begin) / 20 * 1000
    begin = time.perf_counter()
    for _ in range(20):
        mark.embed(probe, RATE, KEY)
    embed_ms = (time.perf_counter() - begin) / 20 * 1000
    print(f"speed per {seconds:.0f} s clip: embed {embed_ms:.1f} ms, detect {detect_ms:.1f} ms; "
          f"CPU {time.process_time() - started:.0f} s; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
