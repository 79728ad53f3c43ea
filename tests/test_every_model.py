"""Tests generated from the registry (STYLE.md #15): every family gets them from its `<family>-tiny` preset."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import aigc
from aigc.config import list_presets
from aigc.errors import ConfigError
from aigc.generation.requests import ImageRequest
from aigc.registry import list_models
from aigc.training.callbacks import Callback
from helpers import tiny, train_tiny

FAMILIES = [spec.name for spec in list_models()]


def test_the_gan_family_is_registered():
    assert {"gan", "dcgan", "cgan", "wgan", "wgan-gp"} <= set(FAMILIES)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_has_a_tiny_preset(family):
    assert f"{family}-tiny" in list_presets()


class Snapshot(Callback):
    """Copies the model's parameters when training starts."""

    def on_fit_start(self, state):
        self.initial = {name: p.detach().clone() for name, p in state.model.named_parameters()}


@pytest.mark.parametrize("family", FAMILIES)
def test_training_steps_change_every_network(family, tmp_path):
    snapshot = Snapshot()
    result = train_tiny(family, tmp_path / "run", callbacks=[snapshot])
    trained = dict(aigc.load(result.run_dir, weights="model").named_parameters())
    for network in ("generator.", "discriminator."):
        names = [name for name in snapshot.initial if name.startswith(network)]
        assert names
        assert any(not torch.equal(snapshot.initial[n], trained[n]) for n in names), f"{network} did not change"
    assert np.isfinite(result.metrics["loss/discriminator"])
    assert np.isfinite(result.metrics["loss/generator"])


@pytest.mark.parametrize("family", FAMILIES)
def test_generation_is_deterministic_for_a_seed_and_survives_save_load(family, tmp_path):
    result = train_tiny(family, tmp_path / "run")
    model = aigc.load(result.run_dir)
    first = model.generate(ImageRequest(count=6, seed=11))
    again = aigc.load(result.run_dir).generate(ImageRequest(count=6, seed=11))
    other = model.generate(ImageRequest(count=6, seed=12))
    assert first.images.dtype == np.uint8 and first.images.shape == (6, 8, 8, 1)
    np.testing.assert_array_equal(first.images, again.images)
    assert not np.array_equal(first.images, other.images)
    # Image i uses seed + i alone: regenerating image 2 by itself gives the same pixels.
    alone = model.generate(ImageRequest(count=1, seed=13, labels=None if first.labels is None else [first.labels[2]]))
    np.testing.assert_array_equal(alone.images[0], first.images[2])


@pytest.mark.parametrize("family", FAMILIES)
def test_loaded_weights_equal_the_trained_ones(family, tmp_path):
    result = train_tiny(family, tmp_path / "run")
    from safetensors.torch import load_file

    saved = load_file(str(result.checkpoint / "model.safetensors"))
    loaded = aigc.load(result.run_dir, weights="model").state_dict()
    assert saved.keys() == loaded.keys()
    for key in saved:
        assert torch.equal(saved[key], loaded[key])


@pytest.mark.parametrize("family", FAMILIES)
def test_overrides_are_validated(family):
    with pytest.raises(ConfigError, match="unknown key") as error:
        tiny(family, "model.widht=3")
    assert "width" in str(error.value)  # the message lists the valid keys
    with pytest.raises(ConfigError, match="model.latent_dim"):
        tiny(family, "model.latent_dim=zero")
    assert tiny(family, "model.latent_dim=5").model.latent_dim == 5
