"""--quantize static: int8 Linear, Conv2d and ConvTranspose2d layers with calibrated int8 activations that
compute what the float layers do (within int8 error), a run folder that `aigc.load` rebuilds from the
recorded transform, and the layers that stay float named with their reason."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import aigc
from aigc.errors import AigcError
from aigc.generation.requests import LatentImageRequest
from aigc.optimize.pipeline import Plan, optimize
from aigc.optimize.quantize import StaticInt8, quantize_static
from aigc.optimize.report import Settings
from helpers import tiny_run

pytestmark = pytest.mark.filterwarnings("ignore::aigc.errors.AigcWarning")


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    return tiny_run(tmp_path_factory, "dcgan", "model.image_size=16", "train.max_steps=2")


LAYERS = {
    "linear": (lambda: nn.Linear(24, 16), (5, 24)),
    "conv2d": (lambda: nn.Conv2d(8, 12, 3, padding=1), (2, 8, 7, 7)),
    "grouped conv2d": (lambda: nn.Conv2d(8, 8, 3, padding=1, groups=8), (2, 8, 7, 7)),
    # 64 -> 32 channels: the shape whose oneDNN transposed-conv kernel gave wrong sums (see StaticInt8)
    "conv_transpose2d": (lambda: nn.ConvTranspose2d(64, 32, 4, 2, 1), (2, 64, 7, 7)),
}


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_a_static_int8_layer_matches_its_float_layer_and_reloads_to_the_same_numbers(kind):
    torch.manual_seed(0)
    make, shape = LAYERS[kind]
    layer = make()
    x = torch.randn(*shape).relu()  # post-ReLU activations: the affine grid's zero point sits at 0
    with torch.no_grad():
        exact = layer(x)
        quantized = StaticInt8.from_float(layer, (float(x.min()), float(x.max())), (float(exact.min()), float(exact.max())))
        approx = quantized(x)
    assert quantized.weight_int8.dtype == torch.int8 and approx.shape == exact.shape
    assert (approx - exact).abs().max() < 0.03 * (exact.max() - exact.min())  # int8 activations, weights and output
    copy = StaticInt8(make())  # what loading builds before the state dict arrives
    copy.load_state_dict(quantized.state_dict())
    with torch.no_grad():
        assert torch.equal(copy(x), approx)


def test_a_statically_quantised_dcgan_is_smaller_loads_generates_and_names_what_stays_float(gan_run, tmp_path):
    out = tmp_path / "static"
    result = optimize(gan_run, out, Plan(quantize="static", calibrate=2), settings=Settings(repeats=1, images=4), measure_quality=False)
    record = result.transforms[-1]
    assert record["name"] == "quantize-static" and "generator.network.body.2" in record["layers"]  # a transposed conv
    assert "generator.network.project.0" in record["layers"]  # the Linear projection
    assert max(record["calibration_error"].values()) < 0.05
    assert all("BatchNorm" not in why for why in record["float_layers"].values())  # norms are no weight layers to list
    report = json.loads((out / "optimize.json").read_text())
    assert report["ratios"]["file_bytes"] > 3 and report["optimized"]["latency_s"] > 0
    assert report["optimized"]["float_layers"] == record["float_layers"]
    loaded = aigc.load(out)
    assert isinstance(loaded.module.generator.network.body[2], StaticInt8)
    request = LatentImageRequest(count=3, seed=5)
    images, again = loaded.generate(request), aigc.load(out).generate(request)
    assert (images.images == again.images).all()  # seeded and rebuilt from the checkpoint alike
    original = aigc.load(gan_run).generate(request)
    difference = (images.images.astype(int) - original.images.astype(int)).__abs__()
    assert difference.mean() < 8 and difference.max() < 128  # the same images within int8 error (uint8 pixels)
    with pytest.raises(AigcError, match="already quantised"):
        optimize(out, tmp_path / "twice", Plan(quantize="static"), measure=False)
    with pytest.raises(AigcError, match=r"no ONNX export: network.project.0 \(quantized::linear\), network.body.2 \(quantized::conv_transpose2d\)"):
        optimize(out, tmp_path / "onnx", Plan(export="onnx"), measure=False)


def test_layers_without_a_kernel_or_beyond_tolerance_stay_float_and_none_left_is_refused():
    network = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, padding_mode="reflect"), nn.ReLU(), nn.Conv1d(4, 4, 1))
    with pytest.raises(AigcError, match=r"no Linear, Conv2d or ConvTranspose2d.*0, 2") as error:
        quantize_static(network, lambda: None)
    assert error.value.field == "--quantize"
    network = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 3), nn.Conv2d(2, 2, 1))
    with pytest.raises(AigcError, match="differs from float by"):
        quantize_static(network, lambda: network(torch.randn(2, 1, 8, 8)), tolerance=0.0)  # no int8 kernel is exact
    record = quantize_static(network, lambda: network[:3](torch.randn(2, 1, 8, 8)))  # the last conv never runs
    assert record["layers"] == ["0", "2"] and "never ran" in record["float_layers"]["3"]
    assert isinstance(network[0], StaticInt8) and type(network[3]) is nn.Conv2d


def test_the_report_names_the_layers_left_in_float32(tmp_path_factory, tmp_path):
    run = tiny_run(tmp_path_factory, "wavegan", "train.max_steps=1")  # a Linear projection, then 1-d transposed convs
    out = tmp_path / "static"
    result = optimize(run, out, Plan(quantize="static", calibrate=1), settings=Settings(repeats=1, images=2), measure_quality=False)
    kept = result.transforms[-1]["float_layers"]
    assert kept and all("ConvTranspose1d: no static int8 kernel" in why for why in kept.values())
    text = (out / "optimize.md").read_text()
    assert "Left in float32 by the quantisation" in text and next(iter(kept)) in text


def test_an_output_layer_tied_to_the_embedding_stays_one_float_tensor(tmp_path_factory, tmp_path):
    run = tiny_run(tmp_path_factory, "gpt")
    result = optimize(run, tmp_path / "static", Plan(quantize="static", calibrate=1), settings=Settings(repeats=1, tokens=4), measure_quality=False)
    record = result.transforms[-1]
    assert "shares its weights with the embedding table token_embedding" in record["float_layers"]["output"]
    assert "blocks.0.attention.qkv" in record["layers"] and result.report["ratios"]["parameters"] == 1.0  # no second copy
    loaded = aigc.load(tmp_path / "static")
    assert loaded.module.output.weight is loaded.module.token_embedding.weight  # tied again on load
