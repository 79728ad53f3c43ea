"""The content photos of `style-photos`, copied once from installed packages into the cache, with a manifest.

    aigc data prepare style-photos      scikit-learn's sample photos, + scikit-image's data photos and Debian
                                        gnome-backgrounds when they are installed (nothing is downloaded)

Each photo is copied as it is (the same bytes) to `<cache>/text/style-photos/content/`, and manifest.json
lists it: the package it came from and its version, the path it was copied from, its licence, its sha256,
bytes and pixel size. `style-photos` then reads the photos from the cache, each checked against its sha256
(the first load builds the cache when it is missing: the packages are on this machine). Style images are
not package files here: `model.style_path` (a file or a folder of your own) or the generated patterns
(`aigc.data.style_sets.generated_styles`, code: MIT), listed in the manifest as such.

A folder of your own needs no preparing: `--set data.path=DIR` (content photos) and
`--set model.style_path=DIR` (style images) are read as they are, and the cache is not used.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from aigc.data.prepare import MANIFEST, Corpus, corpus_dir, is_prepared, prepare, read_manifest, write_outputs
from aigc.errors import DataError
from aigc.files import atomic_write_text, package_version, sha256_file, visible_files

NAME = "style-photos"
PREPARE_COMMAND = "aigc data prepare style-photos"
GNOME_BACKGROUNDS = Path("/usr/share/backgrounds/gnome")
GNOME_COPYRIGHT = Path("/usr/share/doc/gnome-backgrounds/copyright")
SKLEARN_PHOTOS = {"china.jpg": "CC BY 2.0 (danielbuechele on Flickr; per scikit-learn's datasets/images/README.txt)",
                  "flower.jpg": "CC BY 2.0 (vultilion on Flickr; per scikit-learn's datasets/images/README.txt)"}
SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "motorcycle_left")
PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})
STYLES = "model.style_path (your files, read as they are) or 12 generated patterns (aigc.data.style_sets.generated_styles; code, MIT)"


def package_photos() -> list[dict]:
    """The photo files the installed packages hold: {"file", "package", "version", "path", "license"} each."""
    import sklearn.datasets

    folder = Path(sklearn.datasets.__file__).parent / "images"
    found = [{"file": f"sklearn-{name}", "package": "PyPI scikit-learn", "version": package_version("scikit-learn"), "path": str(folder / name), "license": licence}
             for name, licence in SKLEARN_PHOTOS.items() if (folder / name).is_file()]
    try:
        import skimage.data

        data = Path(skimage.data.__file__).parent
        for name in SKIMAGE_PHOTOS:
            for path in sorted(data.glob(f"{name}.*")):
                if path.suffix.lower() in PHOTO_SUFFIXES:  # only the images inside the wheel (others need pooch)
                    found.append({"file": f"skimage-{path.name}", "package": "PyPI scikit-image", "version": package_version("scikit-image"),
                                  "path": str(path), "license": "public domain / CC0 (per skimage.data's docstrings)"})
    except ImportError:
        pass
    if GNOME_BACKGROUNDS.is_dir():
        version = _debian_version("gnome-backgrounds")
        for path in visible_files(GNOME_BACKGROUNDS, PHOTO_SUFFIXES):
            found.append({"file": f"gnome-{path.name}", "package": "Debian gnome-backgrounds", "version": version, "path": str(path),
                          "license": f"CC BY-SA (per {GNOME_COPYRIGHT})"})
    if not found:
        raise DataError("no content photos are installed (scikit-learn's sample images are missing)", field="data.name",
                        fix="pip install scikit-learn (its wheel holds china.jpg and flower.jpg), or --set data.path=DIR with photos of your own")
    return found


def _debian_version(package: str) -> str:
    if shutil.which("dpkg-query") is None:
        return "unknown"
    done = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def fetch(folder: Path) -> Path:
    """Nothing to download: the list of the package files to copy (the build's source)."""
    path = folder / "style-photos-sources.json"
    atomic_write_text(path, json.dumps(package_photos(), indent=2) + "\n")
    return path


def build(source: Path, folder: Path) -> dict:
    from aigc.data.image_files import read_image

    try:
        photos = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read {source}: {error}", field="--source", fix=f"run `{PREPARE_COMMAND}` without --source") from None
    outputs = write_outputs(folder, {f"content/{photo['file']}": Path(photo["path"]).read_bytes() for photo in photos})
    for photo in photos:
        described = outputs[f"content/{photo['file']}"]
        if described["sha256"] != sha256_file(Path(photo["path"])):
            raise DataError(f"{photo['path']} changed while it was copied", field="data.name", fix=f"run `{PREPARE_COMMAND} --force` again")
        image = read_image(folder / "content" / photo["file"], field=NAME)
        described.update(role="content", source_package=photo["package"], version=photo["version"], path=photo["path"],
                         license=photo["license"], width=image.width, height=image.height)
    return {"archive_sha256": sha256_file(source), "styles": STYLES, "outputs": outputs}


CORPUS = Corpus(NAME, "the photos inside installed packages: PyPI scikit-learn (+ scikit-image, Debian gnome-backgrounds when installed)", fetch, build, ())


def cached_photos(*, log=print) -> tuple[list[Path], list[str]]:
    """The content photo files in the cache (built once when missing), each checked against the manifest's
    sha256, and where they came from, in words (package, version, licence)."""
    if not is_prepared(NAME, ()):
        prepare(CORPUS, log=log)
    folder, manifest = corpus_dir(NAME), read_manifest(NAME) or {}
    files, sources = [], {}
    for name, described in manifest.get("outputs", {}).items():
        if described.get("role") != "content":
            continue
        path = folder / name
        if not path.is_file() or sha256_file(path) != described["sha256"]:
            raise DataError(f"{path} is missing or does not match the sha256 in {folder / MANIFEST}", field="data.name",
                            fix=f"rebuild the cache: {PREPARE_COMMAND} --force")
        files.append(path)
        key = f"{described['source_package']} {described['version']} ({described['license'].split(' (')[0]})"
        sources.setdefault(key, []).append(Path(described["path"]).name)
    if not files:
        raise DataError(f"{folder / MANIFEST} lists no content photos", field="data.name", fix=f"rebuild the cache: {PREPARE_COMMAND} --force")
    return files, [f"{key}: {', '.join(names)}" for key, names in sources.items()]
