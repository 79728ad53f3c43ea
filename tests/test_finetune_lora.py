"""LoRA adapters (train.lora): only the adapters train, they are saved apart from the base weights, and
loading or exporting merges them into exactly the model that trained."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from torch import nn

import aigc
from aigc import checkpoint as ckpt
from aigc.config import LoRAConfig
from aigc.errors import ConfigError
from aigc.generation.pipeline import generate
from aigc.generation.text import TextRequest
from aigc.training.callbacks import Callback
from aigc.training.lora import LoRAConv2d, LoRALinear, add_lora
from helpers import StopAt, assert_same_tensors, train_tiny, weights

GPT_LORA = 'train.lora={rank=2, alpha=4, targets=["*attention.qkv", "*mlp.*"]}'


class KeepModel(Callback):
    """The (wrapped, unmerged) network as training left it, and its weights when training started."""

    def on_fit_start(self, state):
        self.initial = {k: v.detach().clone() for k, v in state.model.state_dict().items()}

    def on_fit_end(self, state):
        self.model = copy.deepcopy(state.model).eval()


@pytest.fixture(scope="module")
def parent(tmp_path_factory):
    return train_tiny("gpt", tmp_path_factory.mktemp("parent") / "run", "train.max_steps=6")


@pytest.fixture(scope="module")
def lora_run(parent, tmp_path_factory):
    keep = KeepModel()
    result = train_tiny("gpt", tmp_path_factory.mktemp("lora") / "run", f"train.init_from={str(parent.run_dir)!r}", GPT_LORA, "train.max_steps=6", "optim.lr=0.03", callbacks=[keep])
    return result, keep.model


def test_only_the_adapters_train_and_they_are_saved_apart(parent, lora_run):
    result, _ = lora_run
    base, adapter = weights(result.checkpoint), weights(result.checkpoint, "adapter")
    wrapped = ["blocks.0.attention.qkv", "blocks.0.mlp.fc", "blocks.0.mlp.proj"]
    assert sorted(adapter) == sorted(f"{name}.{part}" for name in wrapped for part in ("lora_a", "lora_b"))
    # The base file is the plain network's state dict, bitwise the parent's weights (they were frozen).
    assert_same_tensors(base, weights(parent.checkpoint))
    assert all(adapter[f"{name}.lora_b"].abs().sum() > 0 for name in wrapped)  # B starts at 0: it trained
    record = json.loads((result.checkpoint / ckpt.SIDECAR).read_text())["lora"]
    assert record["modules"] == wrapped and record["scale"] == 2.0
    assert record["adapter_parameters"] == record["trainable_parameters"] == sum(t.numel() for t in adapter.values())


def test_loading_merges_the_adapters_into_the_same_model(lora_run):
    result, trained = lora_run
    loaded = aigc.load(result.run_dir, safety=False)  # compared with the bare module: no watermark
    assert not any(isinstance(m, (LoRALinear, LoRAConv2d)) for m in loaded.module.modules())
    tokens = torch.randint(4, trained.config.vocab_size, (3, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(loaded.module(tokens), trained(tokens), atol=1e-5)
    request = TextRequest(prompt="the", max_tokens=20, seed=3)
    assert loaded.generate(request).text == generate(trained, request).text
    # The merge changed the weights: the adapters were not a no-op.
    assert not torch.equal(loaded.module.state_dict()["blocks.0.attention.qkv.weight"], weights(result.checkpoint)["blocks.0.attention.qkv.weight"])


def test_export_merges_the_adapters(lora_run, tmp_path):
    result, trained = lora_run
    aigc.zoo.export(result.run_dir, "gpt-lora", preset="gpt-tiny", overrides=[], zoo_dir=tmp_path)
    exported = ckpt.read_sidecar(tmp_path / "gpt-lora" / "weights")
    assert "adapter.safetensors" not in exported["files"] and "lora" not in exported and exported["init_from"]["sha256"]
    loaded = aigc.load(tmp_path / "gpt-lora" / "weights")
    tokens = torch.randint(4, trained.config.vocab_size, (2, 16), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(loaded.module(tokens), trained(tokens), atol=1e-5)


def test_a_lora_run_resumes_exactly(parent, tmp_path):
    init = f"train.init_from={str(parent.run_dir)!r}"
    whole = train_tiny("gpt", tmp_path / "whole", init, GPT_LORA, "train.max_steps=4")
    train_tiny("gpt", tmp_path / "part", init, GPT_LORA, "train.max_steps=4", "train.checkpoint_every=2", callbacks=[StopAt(2)])
    resumed = aigc.train(resume=tmp_path / "part")
    for stem in ("model", "adapter"):
        assert_same_tensors(weights(resumed.checkpoint, stem), weights(whole.checkpoint, stem))


def test_conv_adapters_in_a_diffusion_unet_merge_exactly(tmp_path):
    keep = KeepModel()
    lora = 'train.lora={rank=2, alpha=2, targets=["unet.down.*.conv_*", "unet.time_mlp.0"]}'
    result = train_tiny("ddpm", tmp_path / "run", lora, "optim.lr=0.01", callbacks=[keep])
    assert any(isinstance(m, LoRAConv2d) for m in keep.model.modules())
    loaded = aigc.load(result.run_dir, weights="model").module
    sample = torch.randn(2, loaded.config.channels, loaded.config.image_size, loaded.config.image_size, generator=torch.Generator().manual_seed(0))
    timesteps = torch.tensor([3, 7])
    with torch.no_grad():
        assert torch.allclose(loaded.unet(sample, timesteps, None), keep.model.unet(sample, timesteps, None), atol=1e-5)


def test_under_lora_a_gan_keeps_training_its_discriminator(tmp_path):
    keep = KeepModel()
    result = train_tiny("dcgan", tmp_path / "run", 'train.lora={rank=2, targets=["generator.network.project.0"]}', callbacks=[keep])
    start = keep.initial
    trained = weights(result.checkpoint)
    assert torch.equal(trained["generator.network.project.0.weight"], start["generator.network.project.0.weight"])
    assert not torch.equal(trained["discriminator.head.weight"], start["discriminator.head.weight"])


@pytest.mark.parametrize("layer", [nn.Linear(6, 5), nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect")])
def test_a_merged_layer_computes_what_the_wrapped_one_does(layer):
    original = copy.deepcopy(layer)
    model = nn.Sequential(layer)
    add_lora(model, LoRAConfig(rank=3, alpha=6, targets=["0"]))
    nn.init.normal_(model[0].lora_b)  # as if trained
    merged = nn.Sequential(copy.deepcopy(original))
    merged.load_state_dict(ckpt.merge_adapter(model.state_dict(), 2.0))
    x = torch.randn(2, 6) if isinstance(layer, nn.Linear) else torch.randn(2, 3, 9, 9)
    assert torch.allclose(merged(x), model(x), atol=1e-5)
    assert not torch.allclose(model(x), original(x), atol=1e-3)  # the adapter changes the output


@pytest.mark.parametrize(
    ("family", "targets", "message"),
    [
        ("gpt", ["*norm1"], "matches blocks.0.norm1, a LayerNorm: LoRA adapts Linear and Conv2d layers only"),
        ("gpt", ["output"], "output's weight is tied to another layer"),
        ("gpt", ["decoder.*"], "pattern 'decoder.\\*' matches no Linear or Conv2d layer"),
        ("lstm", ["recurrent"], "matches recurrent, a LSTM"),
        ("transformer-seq2seq", ["*self_attn.out_proj"], "projection of nn.MultiheadAttention"),
        ("dcgan", ["generator.network.body.2"], "a ConvTranspose2d"),
    ],
)
def test_unsupported_layers_and_empty_patterns_are_clear_errors(family, targets, message, tmp_path):
    with pytest.raises(ConfigError, match=message) as error:
        train_tiny(family, tmp_path / "run", f"train.lora={{targets={json.dumps(targets)}}}")
    assert error.value.field == "train.lora.targets"
    assert "LoRA can take:" in str(error.value) or "narrow the pattern to these layers:" in str(error.value)


def _adaptable_layers(family: str, *overrides: str) -> list[str]:
    """The first Linear/Conv2d that LoRA can take in each top-level part of a family's tiny network (outside
    its training-only part), so that every optimizer keeps something to train."""
    from aigc.data import load_dataset
    from aigc.loading import build_model
    from aigc.registry import get_model
    from aigc.training.loop import _fill_from_data
    from helpers import tiny

    config = tiny(family, *overrides)
    _fill_from_data(config, load_dataset(config.data, config.model))
    model = build_model(config)
    skip = tuple(getattr(get_model(family).model_class, "training_only", ()))
    found: dict[str, str] = {}
    for name, module in model.named_modules():
        part = name.split(".")[0]
        if type(module) in (nn.Linear, nn.Conv2d) and not name.startswith(skip) and part not in found:
            try:
                add_lora(copy.deepcopy(model), LoRAConfig(targets=[name]))
            except ConfigError:
                continue
            found[part] = name
    return list(found.values())


@pytest.mark.parametrize("family", [spec.name for spec in __import__("aigc.registry", fromlist=["list_models"]).list_models()])
def test_every_family_trains_lora_adapters_and_loads_them_merged(family, tmp_path):
    # A recurrent LM's only Linear is its output layer, tied to the embedding unless asked otherwise.
    extra = [] if _adaptable_layers(family) else ["model.tie_weights=false"]
    targets = _adaptable_layers(family, *extra)
    assert targets, f"{family} has no layer LoRA can take"
    result = train_tiny(family, tmp_path / "run", f"train.lora={{rank=2, targets={json.dumps(targets)}}}", "train.max_steps=2", *extra)
    adapter = weights(result.checkpoint, "adapter")
    assert sorted(adapter) == sorted(f"{target}.{part}" for target in targets for part in ("lora_a", "lora_b"))
    sidecar = ckpt.read_sidecar(result.checkpoint)
    stem = "ema" if "ema.safetensors" in sidecar["files"] else "model"
    loaded = aigc.load(result.run_dir).module.state_dict()
    expected = ckpt.merge_adapter({**weights(result.checkpoint, stem), **({} if stem == "ema" else adapter)}, sidecar["lora"]["scale"])
    assert loaded.keys() == expected.keys()
    assert all(torch.allclose(loaded[k].float(), expected[k].float(), atol=1e-6) for k in loaded)


def test_a_lora_run_is_a_parent_with_its_adapters_merged(lora_run, tmp_path):
    result, _ = lora_run
    keep = KeepModel()
    train_tiny("gpt", tmp_path / "child", f"train.init_from={str(result.run_dir)!r}", "train.max_steps=1", callbacks=[keep])
    assert_same_tensors({k: keep.initial[k] for k in aigc.load(result.run_dir).module.state_dict()}, aigc.load(result.run_dir).module.state_dict())
