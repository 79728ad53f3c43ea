"""The diffusion family: U-Net shapes, training, classifier-free guidance, samplers, seeds and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import aigc
from aigc.errors import AigcError, ConfigError
from aigc.generation.requests import DiffusionImageRequest as Request
from aigc.generation.requests import TextToImageRequest
from aigc.models.image.unet import UNet
from aigc.models.conditioning import ConditionEmbedding
from aigc.training.loop import build_model
from helpers import tiny, train_tiny


@pytest.mark.parametrize("size, multipliers, attention", [(28, (1, 2, 2), (7,)), (8, (1, 2), (4,)), (32, (1, 2, 2), (8,)), (9, (1, 2), (5,))])
def test_unet_keeps_the_image_shape_at_even_and_odd_sizes(size, multipliers, attention):
    net = UNet(channels=3, image_size=size, base_channels=8, channel_multipliers=multipliers, attention_resolutions=attention, heads=2)
    x = torch.randn(2, 3, size, size)
    out = net(x, torch.tensor([0, 999]), torch.randn(2, 32))
    assert out.shape == x.shape
    assert any(isinstance(m, torch.nn.MultiheadAttention) or type(m).__name__ == "Attention" for m in net.modules())


def test_an_image_does_not_depend_on_its_batch():
    net = UNet(channels=1, image_size=8, base_channels=8, channel_multipliers=(1, 2), attention_resolutions=(4,), heads=2).eval()
    for p in net.parameters():  # zero-initialised output layers would make every output 0
        torch.nn.init.normal_(p, 0, 0.1)
    x, t = torch.randn(4, 1, 8, 8), torch.tensor([5, 50, 500, 900])
    with torch.no_grad():
        torch.testing.assert_close(net(x, t)[1:2], net(x[1:2], t[1:2]), atol=1e-5, rtol=1e-4)


def test_condition_dropout_uses_the_learned_null_vector():
    classes = ConditionEmbedding("class", 6, num_classes=3)
    labels = torch.tensor([0, 1, 2])
    dropped = classes(labels, torch.tensor([False, True, False]))
    assert torch.equal(dropped[1], classes.table.weight[3]) and torch.equal(dropped[0], classes.table.weight[0])
    text = ConditionEmbedding("text", 6, text_dim=4)
    with torch.no_grad():
        text.null.fill_(0.5)
    out = text(torch.randn(2, 4), torch.tensor([True, False]))
    assert torch.equal(out[0], torch.full((6,), 0.5)) and not torch.equal(out[1], torch.full((6,), 0.5))


def test_training_lowers_the_denoising_loss(tmp_path):
    config = tiny("ddpm")
    from aigc.data import load_dataset

    data = load_dataset(config.data, config.model)
    batch = data.val.get_batch(torch.arange(len(data.val)))
    untrained = build_model(config)
    torch.manual_seed(0)
    before = float(untrained.validation_step(batch)["loss"])
    result = train_tiny("ddpm", tmp_path / "run", "train.max_steps=60", "train.eval_every=60", "optim.lr=3e-3")
    model = aigc.load(result.run_dir, weights="model").module
    torch.manual_seed(0)
    after = float(model.validation_step(batch)["loss"])
    assert after < 0.8 * before  # eps prediction starts near 1 (predicting 0 for unit-variance noise)


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_each_image_depends_on_its_seed_alone(sampler, tmp_path):
    model = aigc.load(train_tiny("ddpm", tmp_path / "run", "model.prediction=v").run_dir)
    batch = model.generate(Request(count=4, seed=20, sampler=sampler, sample_steps=6))
    alone = model.generate(Request(count=1, seed=22, sampler=sampler, sample_steps=6))
    np.testing.assert_array_equal(batch.images[2], alone.images[0])
    assert batch.parameters["sampler"] == sampler and batch.parameters["sample_steps"] == 6


def test_class_guidance_mixes_the_two_predictions_by_the_formula(tmp_path):
    model = aigc.load(train_tiny("ddpm", tmp_path / "run", "model.conditioning=class").run_dir)
    sample = torch.randn(3, 1, 8, 8)
    condition = model.module.condition(torch.tensor([1, 2, 3]))
    null = model.module.condition.unconditional(3, sample.device)
    with torch.no_grad():
        conditional = model.module.predict(sample, 40, condition, null, 1.0)
        unconditional = model.module.predict(sample, 40, condition, null, 0.0)
        guided = model.module.predict(sample, 40, condition, null, 3.0)
    torch.testing.assert_close(guided, unconditional + 3.0 * (conditional - unconditional), atol=1e-5, rtol=1e-5)
    a = model.generate(Request(count=3, seed=1, labels=[4], guidance=1.0))
    b = model.generate(Request(count=3, seed=1, labels=[4], guidance=4.0))
    assert a.labels == [4, 4, 4] and a.parameters["guidance"] == 1.0
    assert b.parameters["guidance"] == 4.0


def test_interpolation_ends_at_the_two_seeds(tmp_path):
    model = aigc.load(train_tiny("ddpm", tmp_path / "run").run_dir)
    path = model.generate(Request(count=5, interpolate=(7, 8)))
    np.testing.assert_array_equal(path.images[0], model.generate(Request(count=1, seed=7)).images[0])
    np.testing.assert_array_equal(path.images[-1], model.generate(Request(count=1, seed=8)).images[0])


def test_sampling_uses_the_ema_weights(tmp_path):
    result = train_tiny("ddpm", tmp_path / "run", "train.ema_decay=0.9")
    assert aigc.load(result.run_dir).info.weights == "ema"


def test_bad_input_is_explained(tmp_path):
    model = aigc.load(train_tiny("ddpm", tmp_path / "run").run_dir)
    with pytest.raises(AigcError, match="takes no prompt"):
        model.generate(TextToImageRequest(count=1, prompt="a handwritten seven"))
    with pytest.raises(ValueError, match="prompt"):
        model.request_class(count=1, prompt="a handwritten seven")  # not even a field of its requests
    with pytest.raises(AigcError, match="nothing to guide"):
        model.generate(Request(count=1, guidance=3.0))
    with pytest.raises(AigcError, match="more than the 100"):
        model.generate(Request(count=1, sample_steps=500))
    with pytest.raises(ValueError, match="sample_steps"):
        Request(count=1, sample_steps=0)
    with pytest.raises(ValueError, match="guidance"):
        Request(count=1, guidance=-1)
    with pytest.raises(ConfigError, match="model.conditioning"):
        tiny("ddpm", "model.conditioning=text")  # prompts are the t2i-diffusion family's
    with pytest.raises(ConfigError, match="base_channels"):
        tiny("ddpm", "model.base_channels=12")
