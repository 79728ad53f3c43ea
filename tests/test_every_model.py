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
from helpers import assert_overrides_are_validated, tiny, train_tiny

FAMILIES = [spec.name for spec in list_models()]
# Classifiers (feature networks for metrics) train in the same loop but generate nothing.
GENERATIVE = [spec.name for spec in list_models() if spec.modality != "classifier"]
CLASSIFIERS = [spec.name for spec in list_models() if spec.modality == "classifier"]
IMAGE = [spec.name for spec in list_models() if spec.modality == "image"]  # shape, determinism, save/load checks
GANS = [spec.name for spec in list_models() if spec.modality == "image" and "critic_steps" in spec.config_class.model_fields]
LIKELIHOOD = [spec.name for spec in list_models() if spec.modality == "image" and spec.name not in GANS]  # VAE, diffusion
TEXT = [spec.name for spec in list_models() if spec.modality == "text"]


def test_the_gan_family_is_registered():
    assert {"gan", "dcgan", "cgan", "wgan", "wgan-gp", "t2i-cgan"} <= set(GANS)


def test_the_vae_and_diffusion_families_are_registered():
    assert {"vae", "cvae", "ddpm", "t2i-diffusion"} <= set(LIKELIHOOD)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_has_a_tiny_preset(family):
    assert f"{family}-tiny" in list_presets()


class Snapshot(Callback):
    """Copies the model's parameters when training starts."""

    def on_fit_start(self, state):
        self.initial = {name: p.detach().clone() for name, p in state.model.named_parameters()}


def train_with_snapshot(family, run_dir):
    """Train the tiny preset; return the result, the parameters at the start and the trained ones."""
    snapshot = Snapshot()
    result = train_tiny(family, run_dir, callbacks=[snapshot])
    trained = dict(aigc.load(result.run_dir, weights="model").module.named_parameters())
    return result, snapshot.initial, trained


def assert_every_part_changed(initial, trained, parts):
    """Training moved at least one parameter of each named top-level part (generator, unet, embedding, ...)."""
    for part in parts:
        names = [name for name in trained if name.split(".")[0] == part]
        assert names
        assert any(not torch.equal(initial[n], trained[n]) for n in names), f"{part} did not change"


@pytest.mark.parametrize("family", GANS)
def test_training_steps_change_every_network(family, tmp_path):
    result, initial, trained = train_with_snapshot(family, tmp_path / "run")
    assert_every_part_changed(initial, trained, ("generator", "discriminator"))
    assert np.isfinite(result.metrics["loss/discriminator"])
    assert np.isfinite(result.metrics["loss/generator"])


@pytest.mark.parametrize("family", IMAGE)
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


@pytest.mark.parametrize("family", GENERATIVE)
def test_loaded_weights_equal_the_trained_ones(family, tmp_path):
    result = train_tiny(family, tmp_path / "run")
    from safetensors.torch import load_file

    saved = load_file(str(result.checkpoint / "model.safetensors"))
    loaded = aigc.load(result.run_dir, weights="model").module.state_dict()
    assert saved.keys() == loaded.keys()
    for key in saved:
        assert torch.equal(saved[key], loaded[key])


@pytest.mark.parametrize("family", LIKELIHOOD)
def test_likelihood_model_training_changes_every_network(family, tmp_path):
    result, initial, trained = train_with_snapshot(family, tmp_path / "run")
    assert initial.keys() == trained.keys()
    # encoder, decoder, unet, condition, ...
    assert_every_part_changed(initial, trained, {name.split(".")[0] for name in trained})
    assert np.isfinite(result.metrics["loss/model"]) and np.isfinite(result.metrics["val/loss"])


@pytest.mark.parametrize("family", LIKELIHOOD)
def test_likelihood_model_overrides_are_validated(family):
    assert_overrides_are_validated(family, typo="image_sise", listed="image_size", key="image_size", good=16)


@pytest.mark.parametrize("family", GANS)
def test_overrides_are_validated(family):
    assert_overrides_are_validated(family, typo="widht", listed="width", key="latent_dim", good=5)


# ------------------------------------------------------------------------------------------ classifiers


def test_the_classifier_family_is_registered_as_a_classifier():
    assert CLASSIFIERS == ["classifier"]


@pytest.mark.parametrize("family", CLASSIFIERS)
def test_classifier_training_steps_change_the_weights(family, tmp_path):
    result, initial, trained = train_with_snapshot(family, tmp_path / "run")
    assert initial.keys() == trained.keys()
    changed = [name for name in trained if not torch.equal(initial[name], trained[name])]
    assert len(changed) == len(trained), f"unchanged: {sorted(set(trained) - set(changed))}"
    assert np.isfinite(result.metrics["loss/classifier"])
    assert 0.0 <= result.metrics["val/accuracy"] <= 1.0 and np.isfinite(result.metrics["val/loss"])
    assert not (result.run_dir / "samples").exists()  # nothing to preview


@pytest.mark.parametrize("family", CLASSIFIERS)
def test_classifier_save_load_gives_identical_logits(family, tmp_path):
    result = train_tiny(family, tmp_path / "run")
    model = aigc.load(result.run_dir, weights="model").module
    again = aigc.load(result.run_dir, weights="model").module
    assert not model.training and not again.training
    images = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        logits = model(images)
        assert logits.shape == (5, 10)
        assert torch.equal(logits, again(images))
        # Eval mode: an image's logits do not depend on the rest of the batch (BatchNorm uses running stats).
        assert torch.allclose(model(images[:1]), logits[:1], atol=1e-6)


@pytest.mark.parametrize("family", CLASSIFIERS)
def test_classifier_overrides_are_validated(family):
    assert_overrides_are_validated(family, typo="widht", listed="widths", key="feature_dim", good=16)
    with pytest.raises(ConfigError, match="below one pixel"):
        tiny(family, "model.widths=[4, 8, 16, 32]")  # four max-pools of an 8x8 image


# ------------------------------------------------------------------------------------------ text


def test_the_text_families_are_registered():
    assert {"rnn", "lstm", "gru", "gpt", "seq2seq", "transformer-seq2seq"} <= set(TEXT)


@pytest.mark.parametrize("family", TEXT)
def test_text_training_steps_change_every_network(family, tmp_path):
    result, initial, trained = train_with_snapshot(family, tmp_path / "run")
    # every top-level part (embedding, blocks, encoder, decoder, ...) learned
    assert_every_part_changed(initial, trained, {name.split(".")[0] for name in trained})
    assert np.isfinite(result.metrics["loss/model"]) and np.isfinite(result.metrics["val/loss"])
    assert np.isfinite(result.metrics["val/perplexity"])


@pytest.mark.parametrize("family", TEXT)
def test_text_generation_is_deterministic_for_a_seed_and_survives_save_load(family, tmp_path):
    from aigc.generation.text import TextRequest

    result = train_tiny(family, tmp_path / "run")
    model = aigc.load(result.run_dir)
    request = TextRequest(prompt="Shall I", count=3, seed=11, max_tokens=12)
    first = model.generate(request)
    again = aigc.load(result.run_dir).generate(request)
    other = model.generate(request.model_copy(update={"seed": 12}))
    assert len(first.texts) == 3 and all(isinstance(text, str) for text in first.texts)
    assert first.texts == again.texts
    assert first.texts != other.texts
    # Sample i uses seed + i alone: regenerating sample 2 by itself gives the same text.
    alone = model.generate(request.model_copy(update={"count": 1, "seed": 13}))
    assert alone.texts[0] == first.texts[2]
    # Streaming yields the same text, piece by piece.
    assert "".join(model.stream(request.model_copy(update={"count": 1}))) == first.texts[0]
    # The tokenizer travelled inside the checkpoint and still round-trips English and Chinese.
    assert model.module.tokenizer.decode(model.module.tokenizer.encode("Shall I 床前明月光")) == "Shall I 床前明月光"


@pytest.mark.parametrize("family", TEXT)
def test_text_overrides_are_validated(family):
    assert_overrides_are_validated(family, typo="widht", listed="embedding_dim", key="embedding_dim", good=32)
