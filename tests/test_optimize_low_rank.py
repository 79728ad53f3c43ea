"""--low-rank R: truncated-SVD pairs that reproduce a layer exactly at full rank, only where they are smaller,
rebuilt by loading from the record, fine-tuned through the loop, and int8-quantisable afterwards."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import aigc
from aigc.errors import AigcError
from aigc.generation.text import TextRequest
from aigc.optimize.low_rank import factorize
from aigc.optimize.pipeline import Plan, optimize
from helpers import train_tiny


def test_a_layer_of_rank_r_is_reproduced_exactly_and_only_layers_that_get_smaller_are_factorised():
    torch.manual_seed(0)
    network = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(128, 10))
    with torch.no_grad():  # make the Linear weight exactly rank 2, and the conv's [8, 27] matrix exactly rank 2
        network[3].weight.copy_(torch.randn(10, 2) @ torch.randn(2, 128))
        network[0].weight.copy_((torch.randn(8, 2) @ torch.randn(2, 27)).view(8, 3, 3, 3))
    x = torch.randn(2, 3, 4, 4)
    expected = network(x)
    record = factorize(network, 2)
    assert set(record["layers"]) == {"0", "3"} and record["layers"]["3"]["energy"] == pytest.approx(1.0)
    assert network[0][0].weight.shape == (2, 3, 3, 3) and network[0][1].weight.shape == (8, 2, 1, 1)
    assert torch.allclose(network(x), expected, atol=1e-5)
    wide = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Linear(8, 8))
    assert set(factorize(wide, 6)["layers"]) == {"0"}  # the Linear: 6 x 16 > 64, kept whole; the conv: 6 x 35 < 216
    with pytest.raises(AigcError, match="gets smaller at rank 500"):
        factorize(nn.Sequential(nn.Linear(8, 8)), 500)
    with pytest.raises(AigcError, match="whole number >= 1"):
        factorize(nn.Sequential(nn.Linear(8, 8)), 0)


def test_a_factorised_gpt_loads_generates_fine_tunes_and_quantises(tmp_path):
    run = tmp_path / "gpt"
    train_tiny("gpt", run, "model.embedding_dim=32", "train.max_steps=10")
    result = optimize(run, tmp_path / "lr", Plan(low_rank=4, finetune=2), measure=False)
    assert result.transforms[0]["name"] == "low-rank" and "blocks.0.mlp.fc" in result.transforms[0]["layers"]
    loaded = aigc.load(tmp_path / "lr")
    assert loaded.module.blocks[0].mlp.fc[0].weight.shape == (4, 32)
    assert loaded.generate(TextRequest(prompt="a", max_tokens=5, seed=0)).token_counts[0] > 0
    both = optimize(tmp_path / "lr", tmp_path / "lr-int8", Plan(quantize="dynamic"), measure=False)
    assert [t["name"] for t in both.transforms] == ["low-rank", "quantize-dynamic"]
    assert "blocks.0.mlp.fc.0" in both.transforms[1]["layers"]
    assert aigc.load(tmp_path / "lr-int8").generate(TextRequest(prompt="a", max_tokens=5, seed=0)).token_counts[0] > 0
    with pytest.raises(AigcError, match="replaces the layers whose zeros"):
        optimize(run, tmp_path / "x", Plan(prune=0.5, low_rank=4), measure=False)
