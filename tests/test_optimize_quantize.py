"""--quantize dynamic: int8 Linear layers that compute what the float layers do (within int8 error), a run
folder that `aigc.load` rebuilds from the recorded transforms, and clear refusals for what does not fit."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import aigc
from aigc.errors import AigcError, CheckpointError
from aigc.generation.text import TextRequest
from aigc.optimize.pipeline import Plan, optimize
from aigc.optimize.quantize import Int8Embedding, Int8Linear, quantize_dynamic
from aigc.optimize.report import Settings
from helpers import train_tiny

FAST = Settings(repeats=1, tokens=8)


@pytest.fixture(scope="module")
def gpt_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("gpt") / "run"
    train_tiny("gpt", run, "model.embedding_dim=32", "train.max_steps=20")
    return run


def test_int8_linear_matches_the_float_layer_within_int8_error_and_stores_one_byte_per_weight():
    torch.manual_seed(0)
    linear = nn.Linear(64, 32)
    layer = Int8Linear.from_linear(linear)
    assert layer.weight_int8.dtype == torch.int8 and layer.weight_int8.abs().max() <= 127
    # The stored weights are the float ones rounded to the per-row grid: at most half a step away.
    assert (layer.dequantized_weight() - linear.weight).abs().max() <= layer.weight_scale.max() / 2 + 1e-7
    x = torch.randn(3, 5, 64)
    with torch.no_grad():
        exact, quantized = linear(x), layer(x)
    assert quantized.shape == exact.shape == (3, 5, 32)
    assert (quantized - exact).abs().max() < 0.05 * exact.abs().max()  # int8 activations and weights
    copy = Int8Linear(64, 32, bias=True)
    copy.load_state_dict(layer.state_dict())
    assert torch.equal(copy(x), quantized)  # packed again from the loaded buffers, same kernel, same numbers


def test_int8_embedding_rows_are_the_float_rows_within_half_a_step_and_its_tied_layer_shares_them():
    torch.manual_seed(0)
    table = nn.Embedding(10, 6)
    layer = Int8Embedding.from_embedding(table)
    ids = torch.tensor([[3, 3, 9]])
    assert (layer(ids) - table(ids)).abs().max() <= layer.weight_scale.max() / 2 + 1e-7
    output = layer.tied_linear()
    assert output.weight_int8.data_ptr() == layer.weight_int8.data_ptr()
    x = torch.randn(2, 6)
    assert (output(x) - x @ table.weight.T).abs().max() < 0.05 * (x @ table.weight.T).abs().max()


def test_a_quantised_gpt_run_loads_smaller_generates_and_keeps_its_validation_loss(gpt_run, tmp_path):
    out = tmp_path / "gpt-int8"
    result = optimize(gpt_run, out, Plan(quantize="dynamic"), settings=FAST)
    assert result.transforms[0]["tied"] == {"output": "token_embedding"} and result.transforms[0]["float_layers"] == []
    report = json.loads((out / "optimize.json").read_text())
    assert report["original"]["quality"]["metric"] == "val nats/char"
    assert abs(report["ratios"]["quality_delta_percent"]) < 2
    assert report["ratios"]["file_bytes"] > 3  # 1 byte per weight instead of 4, plus a scale per row
    assert "| original:" in (out / "optimize.md").read_text()
    loaded = aigc.load(out)
    assert [t["name"] for t in loaded.info.sidecar["transforms"]] == ["quantize-dynamic"]
    assert isinstance(loaded.module.blocks[0].attention.qkv, Int8Linear)
    # The tie is rebuilt: the output layer computes with the embedding's own int8 rows (stored once).
    assert loaded.module.output.weight_int8 is loaded.module.token_embedding.weight_int8
    assert torch.equal(loaded.module.output.weight_int8, aigc.load(out).module.token_embedding.weight_int8)
    request = TextRequest(prompt="the ", max_tokens=12, seed=3)
    first, second = loaded.generate(request), aigc.load(out).generate(request)
    assert first.texts == second.texts and first.token_counts[0] > 0
    assert result.checkpoint.parent.parent == out


def test_loading_refuses_a_checkpoint_whose_transforms_do_not_fit(gpt_run, tmp_path):
    out = tmp_path / "gpt-int8"
    optimize(gpt_run, out, Plan(quantize="dynamic"), measure=False)
    sidecar_path = next((out / "checkpoints").glob("step-*")) / "checkpoint.json"
    original = json.loads(sidecar_path.read_text())

    def load_with(transforms):
        sidecar_path.write_text(json.dumps({**original, "transforms": transforms}))
        return aigc.load(out)

    with pytest.raises(CheckpointError, match="'quantize-float4'.*does not know") as error:
        load_with([{"name": "quantize-float4"}])
    assert "quantize-dynamic" in error.value.fix
    with pytest.raises(CheckpointError, match="layer 'blocks.7.mlp.fc'"):
        load_with([{"name": "quantize-dynamic", "layers": ["blocks.7.mlp.fc"]}])
    with pytest.raises(CheckpointError, match="does not fit the model"):
        load_with([])  # int8 weights, float network
    with pytest.raises(CheckpointError, match="malformed 'transforms'"):
        load_with("quantize-dynamic")


def test_a_network_without_linear_layers_is_refused_naming_the_layers_that_stay_float():
    convs = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 1, 3))
    with pytest.raises(AigcError, match=r"no Linear layer.*0, 2.*no dynamic int8 kernel") as error:
        quantize_dynamic(convs)
    assert error.value.field == "--quantize"


def test_unknown_quantisation_and_requantising_are_refused(gpt_run, tmp_path):
    with pytest.raises(AigcError, match="unknown quantisation 'int4'") as error:
        optimize(gpt_run, tmp_path / "a", Plan(quantize="int4"), measure=False)
    assert "dynamic" in error.value.fix and "static" in error.value.fix
    optimize(gpt_run, tmp_path / "b", Plan(quantize="dynamic"), measure=False)
    with pytest.raises(AigcError, match="already quantised"):
        optimize(tmp_path / "b", tmp_path / "c", Plan(quantize="dynamic"), measure=False)
