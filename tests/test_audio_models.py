"""Audio families, generated from the registry (every modality-"audio" family from its tiny preset), plus
the pieces that are easy to get wrong: phase shuffle, the per-sample gradient penalty, SpecGAN's moments,
and `aigc generate RUN -n 8 --label 7 --out seven.wav`."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import torch

import aigc
from aigc.errors import AigcError, ConfigError
from aigc.generation.metadata import read_wav_info
from aigc.generation.requests import AudioRequest
from aigc.models.audio.wavegan import phase_shuffle
from aigc.models.layers import per_sample_gradient_penalty
from aigc.registry import list_models
from aigc.training.callbacks import Callback
from helpers import assert_overrides_are_validated, tiny, train_tiny

AUDIO = [spec.name for spec in list_models() if spec.modality == "audio"]
WAVEFORM = [name for name in AUDIO if "sample_length" in aigc.registry.get_model(name).config_class.model_fields]  # not the music models
GANS = [name for name in AUDIO if "critic_steps" in aigc.registry.get_model(name).config_class.model_fields]


def test_the_audio_families_are_registered():
    assert {"wavegan", "specgan"} <= set(GANS) and "audio-vae" in AUDIO


class Snapshot(Callback):
    def on_fit_start(self, state):
        self.initial = {name: p.detach().clone() for name, p in state.model.named_parameters()}


@pytest.fixture(scope="module", params=GANS)
def trained(request, tmp_path_factory):
    """(family, run folder) of a tiny class-conditional run, with the parameters it started from."""
    snapshot = Snapshot()
    result = train_tiny(request.param, tmp_path_factory.mktemp(request.param) / "run", "model.conditional=true", callbacks=[snapshot])
    return request.param, result, snapshot.initial


def test_training_changes_every_network_and_logs_finite_losses(trained):
    family, result, initial = trained
    weights = dict(aigc.load(result.run_dir, weights="model").module.named_parameters())
    for network in {name.split(".")[0] for name in weights}:  # generator, discriminator, label_embedding
        names = [name for name in weights if name.split(".")[0] == network]
        assert any(not torch.equal(initial[n], weights[n]) for n in names), f"{network} did not change"
    for key, value in result.metrics.items():
        assert np.isfinite(value), key
    assert (result.run_dir / "samples").is_dir() and list((result.run_dir / "samples").glob("*.wav"))


def test_generation_is_seeded_per_clip_and_survives_save_load(trained):
    family, result, _ = trained
    model = aigc.load(result.run_dir)
    first = model.generate(AudioRequest(count=4, seed=11, labels=[7]))
    again = aigc.load(result.run_dir).generate(AudioRequest(count=4, seed=11, labels=[7]))
    other = model.generate(AudioRequest(count=4, seed=12, labels=[7]))
    length = model.info.config.model.sample_length
    assert first.waveforms.shape == (4, length) and first.waveforms.dtype == np.float32
    assert first.sample_rate == 16_000 and first.labels == [7, 7, 7, 7] and first.seeds == [11, 12, 13, 14]
    assert np.abs(first.waveforms).max() <= 1.0
    np.testing.assert_array_equal(first.waveforms, again.waveforms)
    assert not np.array_equal(first.waveforms, other.waveforms)
    # Clip i uses seed + i alone.
    alone = model.generate(AudioRequest(count=1, seed=13, labels=[7]))
    np.testing.assert_allclose(alone.waveforms[0], first.waveforms[2], atol=1e-6)
    # The label matters: another class from the same seeds sounds different.
    assert not np.array_equal(model.generate(AudioRequest(count=4, seed=11, labels=[2])).waveforms, first.waveforms)
    assert first.files()[0].media_type == "audio/wav"


def test_labels_are_checked(trained):
    family, result, _ = trained
    model = aigc.load(result.run_dir)
    with pytest.raises(AigcError, match="out of range") as error:
        model.generate(AudioRequest(count=2, seed=0, labels=[10]))
    assert "0..9" in str(error.value.fix)


def test_an_unconditional_model_refuses_a_label(tmp_path):
    result = train_tiny("wavegan", tmp_path / "run")
    with pytest.raises(AigcError, match="unconditional"):
        aigc.load(result.run_dir).generate(AudioRequest(count=1, seed=0, labels=[3]))


def test_interpolation_walks_from_seed_a_to_seed_b(tmp_path):
    result = train_tiny("wavegan", tmp_path / "run")
    model = aigc.load(result.run_dir)
    walk = model.generate(AudioRequest(count=5, interpolate=(3, 9)))
    assert walk.waveforms.shape[0] == 5 and walk.parameters["interpolate"] == [3, 9]
    np.testing.assert_allclose(walk.waveforms[0], model.generate(AudioRequest(count=1, seed=3)).waveforms[0], atol=1e-6)
    np.testing.assert_allclose(walk.waveforms[-1], model.generate(AudioRequest(count=1, seed=9)).waveforms[0], atol=1e-5)


@pytest.mark.parametrize("family", WAVEFORM)
def test_overrides_are_validated(family):
    assert_overrides_are_validated(family, typo="widht", listed="width", key="sample_rate", good=8000)
    with pytest.raises(ConfigError, match="sample_length|square"):
        tiny(family, "model.sample_length=1000")


# ------------------------------------------------------------------------------------------ the details


def test_phase_shuffle_shifts_each_sample_within_the_radius_with_reflection():
    torch.manual_seed(0)
    features = torch.arange(20.0).repeat(64, 3, 1)  # [64, 3, 20], every row 0..19
    shuffled = phase_shuffle(features, 2)
    assert shuffled.shape == features.shape
    offsets = shuffled[:, 0, 10] - 10  # position t now holds the input at t + offset
    assert set(offsets.tolist()) == {-2.0, -1.0, 0.0, 1.0, 2.0}  # all five shifts occur in 64 samples
    for sample, offset in zip(shuffled, offsets.long().tolist()):
        expected = torch.arange(20.0) + offset
        expected = torch.where(expected < 0, -expected, torch.where(expected > 19, 38 - expected, expected))  # reflection
        assert torch.equal(sample[0], expected) and torch.equal(sample[1], sample[0])  # channels move together
    assert torch.equal(phase_shuffle(features, 0), features)


def test_the_gradient_penalty_is_per_sample_for_waveforms():
    # A critic whose input gradient is known: D(x) = sum(w * x) has gradient w for every sample, so the
    # penalty is exactly (||w|| - 1)^2 whatever the mixing. Broadcasting a [B, 1, 1, 1] mix over [B, 1, T]
    # (an image-shaped epsilon) would make x_hat [B, B, 1, T] and a different number.
    weight = torch.linspace(-1, 1, 50).view(1, 1, 50)
    critic = lambda x: (x * weight).flatten(1).sum(dim=1)  # noqa: E731
    real, fake = torch.randn(6, 1, 50), torch.randn(6, 1, 50)
    penalty = per_sample_gradient_penalty(critic, real, fake)
    torch.testing.assert_close(penalty, (weight.norm() - 1) ** 2)
    # D(x) = ||x||^2 / 2 per sample has gradient x_hat: the penalty is the mean of (||x_hat_i|| - 1)^2.
    torch.manual_seed(1)
    penalty = per_sample_gradient_penalty(lambda x: 0.5 * x.pow(2).flatten(1).sum(dim=1), real, fake)
    torch.manual_seed(1)
    epsilon = torch.rand(6, 1, 1)
    expected = ((epsilon * real + (1 - epsilon) * fake).flatten(1).norm(dim=1) - 1).pow(2).mean()
    torch.testing.assert_close(penalty, expected)


def test_specgan_keeps_the_training_moments_in_its_checkpoint(tmp_path):
    result = train_tiny("specgan", tmp_path / "run")
    module = aigc.load(result.run_dir).module
    assert bool(module.standardize.ready)
    assert module.standardize.mean.abs().sum() > 0 and not torch.allclose(module.standardize.std, torch.ones_like(module.standardize.std))
    # They are the per-bin moments of real log-mel: normalising real clips gives values in [-1, 1].
    from aigc.data import load_dataset

    config = module.config
    data = load_dataset(aigc.config.DataConfig(name="tones"), config)
    real = data.val.get_batch(torch.arange(8))["audio"]
    normalised = module.to_model_space(real)
    assert normalised.shape == (8, 1, config.n_mels, config.n_mels) and normalised.abs().max() <= 1


def test_cli_writes_eight_sevens_as_one_wav_with_provenance(trained, tmp_path):
    family, result, _ = trained
    target = tmp_path / "seven.wav"
    done = subprocess.run([sys.executable, "-m", "aigc", "generate", str(result.run_dir), "-n", "8", "--label", "7", "--seed", "0", "--out", str(target)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    waveform, rate = soundfile.read(target)
    length = tiny(family).model.sample_length
    assert rate == 16_000 and len(waveform) == 8 * length + 7 * int(0.25 * 16_000)  # clips joined by 0.25 s of silence
    record = json.loads(read_wav_info(target.read_bytes())["aigc"])
    assert record["labels"] == [7] * 8 and record["seeds"] == list(range(8)) and record["model"].startswith(family)
    out_of_range = subprocess.run([sys.executable, "-m", "aigc", "generate", str(result.run_dir), "--label", "12", "--out", str(tmp_path / "x.wav")], capture_output=True, text=True, timeout=120)
    assert out_of_range.returncode == 2 and "label 12 is out of range" in out_of_range.stderr and "Traceback" not in out_of_range.stderr


# ------------------------------------------------------------------------------------------ the audio VAE


@pytest.mark.parametrize("beta", ["1.0", "0.0"])  # the VAE, and the plain autoencoder
def test_audio_vae_trains_generates_per_seed_and_reconstructs(tmp_path, beta):
    snapshot = Snapshot()
    result = train_tiny("audio-vae", tmp_path / "run", f"model.beta={beta}", callbacks=[snapshot])
    model = aigc.load(result.run_dir)
    weights = dict(model.module.named_parameters())
    for network in ("encoder", "decoder"):
        assert any(not torch.equal(snapshot.initial[n], weights[n]) for n in weights if n.startswith(network)), network
    assert np.isfinite(result.metrics["val/log_spectral_distance_db"]) and result.metrics["val/log_spectral_distance_db"] > 0
    first = model.generate(AudioRequest(count=3, seed=5))
    assert first.waveforms.shape == (3, 1024) and first.labels is None
    np.testing.assert_array_equal(first.waveforms, aigc.load(result.run_dir).generate(AudioRequest(count=3, seed=5)).waveforms)
    np.testing.assert_allclose(model.generate(AudioRequest(count=1, seed=7)).waveforms[0], first.waveforms[2], atol=1e-6)
    with pytest.raises(AigcError, match="unconditional"):
        model.generate(AudioRequest(count=1, seed=0, labels=[1]))
    from aigc.data.audio import make_tones

    clips, _ = make_tones(4, 16_000, 1024, seed=9)
    rebuilt = model.module.reconstruct(clips.astype(np.float32) / 32768)
    assert rebuilt.waveforms.shape == (4, 1024) and rebuilt.parameters["reconstruction"] is True
    assert bool(model.module.standardize.ready)  # the training moments travelled in the checkpoint


@pytest.mark.parametrize("family", GANS)
def test_the_projection_critic_does_not_score_the_label_more_than_the_sound_at_the_start(family):
    # With label embeddings at PyTorch's N(0, 1) the projection term <embed(y), phi(x)> of a conditional
    # wavegan-digits critic was ~50x its head's score (2,048 features) and the generator collapsed to one
    # class; from N(0, 0.02), as the image GANs', the two are of the same size.
    config = aigc.config.load_config(f"{family}-digits").model.model_copy(update={"num_classes": 10})
    torch.manual_seed(0)
    module = aigc.registry.get_model(family).model_class(config)
    critic = module.discriminator
    real = torch.randn(16, 1, config.sample_length) * 0.1 if family == "wavegan" else torch.randn(16, 1, config.n_mels, config.n_mels) * 0.5
    labels = torch.arange(16) % 10
    with torch.no_grad():
        features = critic.body(real)
        head = critic.head(features).squeeze(1).abs().mean()
        projection = (critic.projection(labels) * features).sum(dim=1).abs().mean()
    assert projection < 5 * head, (float(projection), float(head))
