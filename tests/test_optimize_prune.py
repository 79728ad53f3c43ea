"""--prune: magnitude pruning zeroes the smallest weights (and fine-tuning keeps them zero); --structured
removes conv channels so that the tensors and the file really shrink, and loading rebuilds the narrower
network from the checkpoint's record."""

from __future__ import annotations

import json
import math
import tomllib

import pytest
import torch
from torch import nn

import aigc
from aigc.errors import AigcError
from aigc.generation.requests import LatentImageRequest
from aigc.optimize.pipeline import Plan, optimize
from aigc.optimize.prune import prune_channels, prune_magnitude
from aigc.optimize.report import Settings
from helpers import train_tiny

FAST = Settings(repeats=1, images=4, quality_samples=20, feature_network="mnist-classifier")


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("gan") / "run"
    train_tiny("dcgan", run, "model.image_size=16", "train.max_steps=6")  # 16 px: two transposed convs
    return run


@pytest.mark.parametrize("amount", [0, 1, -0.2, 1.5, math.nan])
def test_amounts_outside_zero_one_are_refused(amount):
    with pytest.raises(AigcError, match="strictly between 0 and 1") as error:
        prune_magnitude(nn.Linear(4, 4), amount)
    assert error.value.field == "--prune"


def test_global_magnitude_pruning_zeroes_the_smallest_weights_across_layers():
    torch.manual_seed(0)
    network = nn.Sequential(nn.Linear(20, 20), nn.ReLU(), nn.Linear(20, 10))
    with torch.no_grad():
        network[2].weight.mul_(100)  # the second layer's weights are all larger: global ranking spares them
    masks, record = prune_magnitude(network, 0.5)
    assert record["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert (network[0].weight == 0).float().mean() > 0.7 and (network[2].weight == 0).float().mean() < 0.05
    assert torch.equal(network[0].weight == 0, ~masks["0.weight"])
    _, per_layer = prune_magnitude(network, 0.5, scope="layer")
    assert (network[2].weight == 0).float().mean() == pytest.approx(0.5, abs=0.01)


def test_channel_pruning_shrinks_a_conv_generator_and_the_run_loads_and_generates(gan_run, tmp_path):
    out = tmp_path / "half"
    result = optimize(gan_run, out, Plan(prune=0.5, structured=True), settings=FAST)
    record = result.transforms[0]
    assert record["name"] == "prune-channels" and record["projections"] and record["chains"]
    loaded = aigc.load(out)
    generator = loaded.module.generator.network
    original = aigc.load(gan_run).module.generator.network
    assert generator.base_channels == original.base_channels // 2
    assert generator.body[2].weight.shape[:2] == (original.body[2].weight.shape[0] // 2, original.body[2].weight.shape[1] // 2)
    report = json.loads((out / "optimize.json").read_text())
    assert report["ratios"]["parameters"] > 2.5 and report["ratios"]["file_bytes"] > 2.5  # the discriminator is left out too
    assert report["optimized"]["quality"]["metric"].startswith("FD")
    images = loaded.generate(LatentImageRequest(count=3, seed=5))
    assert images.images.shape[0] == 3 and images.images.shape[1:3] == (16, 16)


def test_structured_pruning_needs_conv_chains():
    with pytest.raises(AigcError, match="no conv -> conv chain") as error:
        prune_channels(nn.Sequential(nn.Linear(3, 3)), 0.5)
    assert "without --structured" in error.value.fix


def test_finetuning_runs_through_the_loop_and_pruned_weights_stay_zero(gan_run, tmp_path):
    out = tmp_path / "sparse"
    result = optimize(gan_run, out, Plan(prune=0.5, finetune=3), measure=False)
    record = result.transforms[0]
    assert record["finetune"]["steps"] == 3 and "output matching" in record["finetune"]["objective"]
    assert (out / "finetune" / "metrics.jsonl").is_file() and not (out / "finetune" / "checkpoints").exists()
    before = aigc.load(gan_run).module.state_dict()
    after = aigc.load(out).module.state_dict()
    layers = record["layers"]
    zeros = sum(int((after[name] == 0).sum()) for name in layers)
    total = sum(after[name].numel() for name in layers)
    assert zeros / total >= 0.5
    assert any(not torch.equal(after[name], before[name] * (after[name] != 0)) for name in layers)  # it trained


def test_an_optimised_run_is_optimised_again_and_its_transforms_accumulate(gan_run, tmp_path):
    narrow = tmp_path / "narrow"
    optimize(gan_run, narrow, Plan(prune=0.25, structured=True), measure=False)  # its checkpoint leaves the discriminator out
    result = optimize(narrow, tmp_path / "narrower", Plan(prune=0.3, finetune=2), measure=False)
    assert "output matching" in result.transforms[-1]["finetune"]["objective"]
    assert [t["name"] for t in aigc.load(tmp_path / "narrower").info.sidecar["transforms"]] == ["prune-channels", "prune"]


def test_a_language_model_fine_tunes_with_its_own_training_step(tmp_path):
    train_tiny("gpt", tmp_path / "gpt")
    result = optimize(tmp_path / "gpt", tmp_path / "sparse", Plan(prune=0.5, finetune=2), measure=False)
    assert "the family's training step" in result.transforms[0]["finetune"]["objective"]
    weights = aigc.load(tmp_path / "sparse").module.state_dict()
    layers = result.transforms[0]["layers"]
    assert sum(int((weights[n] == 0).sum()) for n in layers) >= 0.5 * sum(weights[n].numel() for n in layers)


def test_a_layer_of_its_own_amount_keeps_its_channels_and_the_run_loads(gan_run, tmp_path):
    out = tmp_path / "projection-only"
    result = optimize(gan_run, out, Plan(prune=0.5, structured=True, prune_layers=(("generator.network.body.2", 0.0),)), measure=False)
    record = result.transforms[0]
    assert record["layer_amounts"] == {"generator.network.body.2": 0.0}
    original = aigc.load(gan_run).module.generator.network
    generator = aigc.load(out).module.generator.network
    assert generator.base_channels == original.base_channels // 2  # the projection: the global amount
    assert generator.body[2].weight.shape[1] == original.body[2].weight.shape[1]  # its own amount 0: every output channel kept
    assert generator.body[2].weight.shape[0] == original.body[2].weight.shape[0] // 2  # its inputs follow the projection


@pytest.mark.parametrize("layers, message", [
    ((("generator.network.body.9", 0.5),), "not a layer whose channels can be removed"),
    ((("generator.network", 1.0),), r"lies in \[0, 1\)"),
])
def test_bad_layer_amounts_are_refused(gan_run, tmp_path, layers, message):
    with pytest.raises(AigcError, match=message) as error:
        optimize(gan_run, tmp_path / "bad", Plan(prune=0.5, structured=True, prune_layers=layers), measure=False)
    assert error.value.field == "--prune-layer" and "generator.network" in error.value.fix
    with pytest.raises(AigcError, match="needs --structured"):
        Plan(prune=0.5, prune_layers=layers).check()


def test_the_bn_criterion_keeps_the_channels_with_the_largest_batchnorm_scale():
    torch.manual_seed(0)
    network = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 3))
    root = nn.ModuleDict({"body": network})  # chains are looked for below the root
    with torch.no_grad():
        network[0].weight.copy_(torch.tensor([4.0, 3.0, 2.0, 1.0])[:, None, None, None].expand(4, 1, 3, 3))  # L1 would keep 0, 1
        network[1].weight.copy_(torch.tensor([0.1, 0.2, 5.0, 4.0]))  # the BatchNorm scales channels 2 and 3 up
    kept = network[1].weight[2:].clone()
    record = prune_channels(root, 0.5, criterion="bn")
    assert record["criterion"].startswith("|scale| of the BatchNorm") and torch.equal(network[1].weight, kept)
    assert network[0].weight.shape[0] == 2 and network[3].weight.shape[1] == 2
    with pytest.raises(AigcError, match="has no BatchNorm after it") as error:
        prune_channels(nn.ModuleDict({"body": nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 3))}), 0.5, criterion="bn")
    assert error.value.field == "--criterion" and "--criterion l1" in error.value.fix
    with pytest.raises(AigcError, match="unknown channel criterion 'random'"):
        prune_channels(root, 0.5, criterion="random")
    with pytest.raises(AigcError, match="it needs --structured"):
        Plan(prune=0.5, criterion="bn").check()


def test_finetuning_takes_settings_of_its_own_and_records_them(gan_run, tmp_path):
    plan = Plan(prune=0.5, structured=True, criterion="bn", finetune=2, finetune_overrides=("optim.lr=0.005", "train.lr_schedule=cosine"))
    result = optimize(gan_run, tmp_path / "tuned", plan, measure=False)
    assert result.transforms[0]["finetune"]["settings"] == ["optim.lr=0.005", "train.lr_schedule=cosine"]
    config = tomllib.loads((tmp_path / "tuned" / "finetune" / "config.toml").read_text())
    assert config["optim"]["lr"] == 0.005 and config["train"]["lr_schedule"] == "cosine" and config["train"]["max_steps"] == 2
    with pytest.raises(AigcError, match="no --finetune steps"):
        Plan(prune=0.5, finetune_overrides=("optim.lr=1e-3",)).check()
