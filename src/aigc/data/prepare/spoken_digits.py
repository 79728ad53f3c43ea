"""Spoken digits, synthesised here with Debian `espeak-ng`: a speech-commands-style set (SC09's convention:
16 kHz mono, 16,384 samples per clip), English "zero".."nine" and Mandarin 零..九.

    aigc data prepare spoken-digits            the default recipe below, ~10,000 clips in about two minutes
    aigc data prepare spoken-digits --source recipe.json    your own recipe (voices, variants, ranges)

The "source" of this corpus is its recipe (a JSON file of the parameters below); the manifest records
it, espeak-ng's version and every output's sha256, so the same recipe and version give the same clips.

- **Speakers**: a speaker is an espeak-ng voice plus a voice variant (`en-us+Storm`): the English voices
  are every `en*` voice espeak-ng lists except the MBROLA ones (those need Debian's `mbrola-*`
  packages), the Mandarin one is `cmn-latn-pinyin`, and the variants are every one espeak-ng lists.
  Each (speaker, digit) is spoken once, at a pitch and speed drawn (seeded) from the recipe's ranges.
- **Mandarin** goes in as tone-numbered pinyin (`qi1`) to `cmn-latn-pinyin`: the plain `cmn` voice reads
  Latin letters as English, so "qi1" became "kI55w'055n" (English "one"); `espeak-ng -v cmn-latn-pinyin
  -x qi1` gives "tS;h'i55" (test_audio_data checks every digit's phonemes).
- **Split by speaker timbre**: the variants are shuffled (seeded) and the first `test_fraction` of them
  go to test, the next `val_fraction` to validation; every clip of a variant (all voices, both languages)
  is in that split, so test speakers' timbres are never heard in training.
- **Each clip**: espeak-ng's 22,050 Hz output, silence trimmed (below 1% of the peak at either end),
  resampled to 16 kHz (scipy `resample_poly`, 160/441), peak-normalised to 0.9, centred in 16,384
  samples; a word longer than that (slow speech) is cut at both ends and counted in the manifest.

Files: `clips.npy` (int16 [N, 16384]) and `clips.jsonl` (one record per clip: split, digit, language,
word, voice, variant, pitch, speed).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from aigc.data.prepare import Corpus, write_outputs
from aigc.errors import DataError
from aigc.files import atomic_write_text, package_version, sha256_file

PREPARE_COMMAND = "aigc data prepare spoken-digits"
ESPEAK_INSTALL = "apt-get install espeak-ng"
ENGLISH_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
MANDARIN_PINYIN = ("ling2", "yi1", "er4", "san1", "si4", "wu3", "liu4", "qi1", "ba1", "jiu3")
MANDARIN_CHARACTERS = ("零", "一", "二", "三", "四", "五", "六", "七", "八", "九")
MANDARIN_VOICE = "cmn-latn-pinyin"
ESPEAK_RATE = 22_050  # espeak-ng's output rate
FILES = ("clips.npy", "clips.jsonl")

DEFAULT_RECIPE = {
    "sample_rate": 16_000,
    "samples": 16_384,
    "english_voices": "all",  # or a list such as ["en-us", "en-gb"]
    "mandarin": True,
    "variants": "all",  # or a list of espeak-ng variant names
    "pitch": [25, 75],  # espeak-ng -p range (0-99, default 50)
    "speed": [130, 210],  # espeak-ng -s range, words per minute (default 175)
    "val_fraction": 0.1,
    "test_fraction": 0.1,
    "seed": 0,
    "peak": 0.9,
}


def espeak() -> str:
    """The espeak-ng executable, or a DataError naming the Debian package."""
    found = shutil.which("espeak-ng")
    if found is None:
        raise DataError("espeak-ng is not installed, so the spoken digits cannot be synthesised", field="spoken-digits", fix=f"install the Debian package: {ESPEAK_INSTALL}")
    return found


def espeak_version() -> str:
    output = subprocess.run([espeak(), "--version"], capture_output=True, text=True).stdout
    match = re.search(r"text-to-speech: (\S+)", output)
    return match.group(1) if match else output.strip()


def _voice_table(kind: str) -> list[tuple[str, str]]:
    """(language, file) rows of `espeak-ng --voices=KIND`."""
    output = subprocess.run([espeak(), f"--voices={kind}"], capture_output=True, text=True).stdout
    rows = [line.split() for line in output.splitlines()[1:] if line.strip()]
    return [(row[1], row[4]) for row in rows if len(row) >= 5]


def english_voices() -> list[str]:
    """espeak-ng's own English voices (not MBROLA's, which need extra Debian packages), by language code."""
    return sorted({language for language, file in _voice_table("en") if language.startswith("en") and not file.startswith("mb/")})


def voice_variants() -> list[str]:
    """The variant names that `VOICE+VARIANT` takes (file names under espeak-ng-data/voices/!v)."""
    return sorted({file.split("/", 1)[1] for _, file in _voice_table("variant") if file.startswith("!v/")})


def phonemes(voice: str, text: str) -> str:
    """What espeak-ng would say, as its phoneme mnemonics (`espeak-ng -x -q`)."""
    return subprocess.run([espeak(), "-v", voice, "-x", "-q", text], capture_output=True, text=True).stdout.strip()


def resolve_recipe(recipe: dict) -> dict:
    """The recipe with every default filled in and "all" replaced by what this espeak-ng has."""
    unknown = sorted(set(recipe) - set(DEFAULT_RECIPE))
    if unknown:
        raise DataError(f"the recipe has unknown keys: {', '.join(unknown)}", field="--source", fix=f"use only: {', '.join(DEFAULT_RECIPE)}")
    resolved = {**DEFAULT_RECIPE, **recipe}
    if resolved["english_voices"] == "all":
        resolved["english_voices"] = english_voices()
    if resolved["variants"] == "all":
        resolved["variants"] = voice_variants()
    known = set(voice_variants())
    missing = [variant for variant in resolved["variants"] if variant not in known]
    if missing:
        raise DataError(f"espeak-ng has no variants {', '.join(missing[:5])}", field="--source", fix="list them with `espeak-ng --voices=variant`")
    if not resolved["variants"]:
        raise DataError("the recipe names no variants", field="--source", fix='use "variants": "all" or a list')
    return resolved


def plan(recipe: dict) -> list[dict]:
    """One record per clip to synthesise: speaker, word, pitch, speed and split (deterministic for a recipe)."""
    rng = np.random.default_rng(recipe["seed"])
    variants = list(recipe["variants"])
    order = rng.permutation(len(variants))
    test_count = max(1, round(len(variants) * recipe["test_fraction"])) if recipe["test_fraction"] > 0 else 0
    val_count = max(1, round(len(variants) * recipe["val_fraction"])) if recipe["val_fraction"] > 0 else 0
    split_of = {}
    for rank, index in enumerate(order):
        split_of[variants[index]] = "test" if rank < test_count else "val" if rank < test_count + val_count else "train"
    voices = [(voice, "en") for voice in recipe["english_voices"]] + ([(MANDARIN_VOICE, "zh")] if recipe["mandarin"] else [])
    clips = []
    for voice, language in voices:
        for variant in variants:
            for digit in range(10):
                word = ENGLISH_WORDS[digit] if language == "en" else MANDARIN_PINYIN[digit]
                clips.append({
                    "split": split_of[variant], "digit": digit, "language": language,
                    "word": word if language == "en" else f"{MANDARIN_CHARACTERS[digit]} ({word})",
                    "text": word, "voice": voice, "variant": variant,
                    "pitch": int(rng.integers(recipe["pitch"][0], recipe["pitch"][1] + 1)),
                    "speed": int(rng.integers(recipe["speed"][0], recipe["speed"][1] + 1)),
                })
    return clips


def synthesise(clip: dict) -> np.ndarray:
    """espeak-ng's float32 waveform at 22,050 Hz for one planned clip."""
    import soundfile

    command = [espeak(), "-v", f"{clip['voice']}+{clip['variant']}", "-p", str(clip["pitch"]), "-s", str(clip["speed"]), "--stdout", clip["text"]]
    completed = subprocess.run(command, capture_output=True)
    if completed.returncode != 0 or not completed.stdout:
        raise DataError(f"espeak-ng failed for {' '.join(command[1:])}: {completed.stderr.decode(errors='replace').strip()}", field="spoken-digits")
    waveform, rate = soundfile.read(io.BytesIO(completed.stdout), dtype="float32", always_2d=True)
    if rate != ESPEAK_RATE:
        raise DataError(f"espeak-ng wrote {rate} Hz, expected {ESPEAK_RATE}", field="spoken-digits")
    return waveform.mean(axis=1)


def finish_clip(waveform: np.ndarray, recipe: dict) -> tuple[np.ndarray, bool]:
    """(int16 [samples], whether it was cut): trimmed, resampled to 16 kHz, normalised, centred."""
    from aigc.data.audio import fit_length, resample, to_int16, trim_silence

    word = resample(trim_silence(waveform), ESPEAK_RATE, recipe["sample_rate"])
    word = word * (recipe["peak"] / max(float(np.abs(word).max()), 1e-9))
    return to_int16(fit_length(word, recipe["samples"])), len(word) > recipe["samples"]


def build_clips(recipe: dict, *, workers: int | None = None) -> tuple[np.ndarray, list[dict], int]:
    """(int16 clips [N, samples], their records, how many were cut) for a resolved recipe."""
    records = plan(recipe)
    workers = workers or min(16, 2 * (os.cpu_count() or 1))  # espeak-ng runs are processes: threads just wait
    with ThreadPoolExecutor(workers) as pool:
        finished = list(pool.map(lambda clip: finish_clip(synthesise(clip), recipe), records))
    clips = np.stack([clip for clip, _ in finished]) if finished else np.zeros((0, recipe["samples"]), np.int16)
    for record in records:
        del record["text"]
    return clips, records, sum(cut for _, cut in finished)


# ------------------------------------------------------------------ the Corpus interface of `aigc data prepare`


def fetch(folder: Path) -> Path:
    """Nothing to download: the default recipe, written where `prepare` expects its source."""
    espeak()  # fail now, naming the Debian package, if it is missing
    path = folder / "spoken-digits-recipe.json"
    atomic_write_text(path, json.dumps(DEFAULT_RECIPE, indent=2) + "\n")
    return path


def build(source: Path, folder: Path) -> dict:
    try:
        recipe = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"cannot read the recipe {source}: {error}", field="--source", fix=f"give a JSON object with keys from: {', '.join(DEFAULT_RECIPE)}") from None
    if not isinstance(recipe, dict):
        raise DataError(f"{source} is not a JSON object", field="--source", fix=f"give a JSON object with keys from: {', '.join(DEFAULT_RECIPE)}")
    recipe = resolve_recipe(recipe)
    clips, records, cut = build_clips(recipe)
    buffer = io.BytesIO()
    np.save(buffer, clips, allow_pickle=False)
    lines = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records).encode("utf-8")
    outputs = write_outputs(folder, {"clips.npy": buffer.getvalue(), "clips.jsonl": lines})
    outputs["clips.npy"].update(clips=len(clips), samples=recipe["samples"])
    counts = {f"{split}/{language}": sum(r["split"] == split and r["language"] == language for r in records) for split in ("train", "val", "test") for language in ("en", "zh")}
    return {
        "archive_sha256": sha256_file(source),
        "versions": {"espeak-ng": espeak_version(), "numpy": np.__version__, "scipy": package_version("scipy"), "soundfile": package_version("soundfile")},
        "parameters": recipe,
        "counts": {**counts, "cut": cut},
        "outputs": outputs,
    }


CORPUS = Corpus("spoken-digits", f"Debian espeak-ng (synthesised here; {ESPEAK_INSTALL})", fetch, build, FILES)
