"""The VAE family: ELBO terms by hand, their signs, beta, likelihood in nats and bits/dim, interpolation,
reconstruction and the conditional VAE."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import aigc
from aigc.errors import AigcError
from aigc.generation.requests import PromptImageRequest
from aigc.models.image.vae import bernoulli_log_likelihood, discretized_gaussian_log_likelihood
from aigc.models.layers import gaussian_kl
from aigc.training.loop import build_model
from helpers import tiny, train_tiny


def _phi(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def test_gaussian_kl_by_hand_and_never_negative():
    mean = torch.tensor([[1.0, 0.0]])
    log_variance = torch.tensor([[0.0, math.log(2.0)]])
    # 0.5 (1 + 1 - 1 - 0) + 0.5 (0 + 2 - 1 - ln 2)
    assert gaussian_kl(mean, log_variance).item() == pytest.approx(0.5 + 0.5 * (1 - math.log(2)), rel=1e-6)
    assert gaussian_kl(torch.zeros(1, 3), torch.zeros(1, 3)).item() == 0.0  # q = p
    generator = torch.Generator().manual_seed(0)
    kl = gaussian_kl(torch.randn(1000, 8, generator=generator) * 3, torch.randn(1000, 8, generator=generator) * 3)
    assert (kl >= 0).all()


def test_bernoulli_log_likelihood_by_hand():
    logits = torch.tensor([[0.0, 2.0]])
    targets = torch.tensor([[1.0, 0.0]])
    expected = math.log(0.5) + math.log(1 - 1 / (1 + math.exp(-2.0)))
    assert bernoulli_log_likelihood(logits, targets).item() == pytest.approx(expected, rel=1e-6)


def test_discretized_gaussian_integrates_each_bin_and_the_edges():
    sigma = 0.1
    images = torch.tensor([[0.0 + 1 / 255, -1.0, 1.0]])  # an inner level, the lowest, the highest
    means = torch.tensor([[0.0, -1.0, 0.9]])
    log_scales = torch.full_like(means, math.log(sigma))
    inner = _phi((1 / 255 + 1 / 255) / sigma) - _phi((1 / 255 - 1 / 255) / sigma)
    lowest = _phi((1 / 255) / sigma)  # (-inf, -1 + 1/255]
    highest = 1 - _phi((1.0 - 1 / 255 - 0.9) / sigma)  # [1 - 1/255, inf)
    expected = math.log(inner) + math.log(lowest) + math.log(highest)
    assert discretized_gaussian_log_likelihood(images, means, log_scales).item() == pytest.approx(expected, rel=1e-5)
    # The 256 bins of one pixel sum to probability 1: a proper likelihood of 8-bit images.
    levels = torch.arange(256, dtype=torch.float64) / 127.5 - 1
    total = discretized_gaussian_log_likelihood(levels[:, None], torch.full((256, 1), 0.3, dtype=torch.float64), torch.full((256, 1), math.log(0.2), dtype=torch.float64)).exp().sum()
    assert total.item() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("decoder", ["gaussian", "bernoulli"])
def test_elbo_terms_of_the_model_match_a_hand_computation(decoder):
    """Run the encoder and decoder by hand with the same noise and compare with `elbo_terms`."""
    config = tiny("vae", f"model.decoder={decoder}")
    config.model.num_classes = None
    model = build_model(config).eval()
    if decoder == "gaussian":
        with torch.no_grad():
            model.log_scale.fill_(0.0)  # sigma = 1: no bin probability underflows in the hand computation
    images = torch.randint(0, 256, (3, 1, 8, 8)).float() / 127.5 - 1
    torch.manual_seed(5)
    terms = model.elbo_terms({"images": images})
    torch.manual_seed(5)
    mean, log_variance = model.encoder(images, None)
    z = mean + torch.randn_like(mean) * torch.exp(0.5 * log_variance)
    decoded = model.decoder(z, None)
    kl = 0.5 * (mean**2 + log_variance.exp() - 1 - log_variance).sum(1)
    if decoder == "bernoulli":
        binary = (images > 0).float()
        p = torch.sigmoid(decoded)
        log_likelihood = (binary * torch.log(p) + (1 - binary) * torch.log(1 - p)).flatten(1).sum(1)
    else:
        sigma = model.log_scale.exp()
        upper = 0.5 * (1 + torch.erf((images + 1 / 255 - decoded) / sigma / math.sqrt(2)))
        lower = 0.5 * (1 + torch.erf((images - 1 / 255 - decoded) / sigma / math.sqrt(2)))
        bins = torch.where(images <= -1, upper, torch.where(images >= 1, 1 - lower, upper - lower))
        log_likelihood = torch.log(bins).flatten(1).sum(1)
    torch.testing.assert_close(terms["kl"], kl, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(terms["reconstruction"], -log_likelihood, rtol=1e-4, atol=1e-3)
    assert (terms["kl"] >= 0).all() and (terms["reconstruction"] >= 0).all()  # -log of probabilities


def test_logged_signs_beta_and_bits_per_dim(tmp_path):
    result = train_tiny("vae", tmp_path / "run", "model.beta=4.0")
    metrics = result.metrics
    assert metrics["model/kl"] >= 0 and metrics["model/reconstruction"] >= 0
    assert metrics["model/elbo"] == pytest.approx(-(metrics["model/reconstruction"] + metrics["model/kl"]), rel=1e-5)
    assert metrics["model/elbo"] < 0  # a bound on a log-probability of discrete data
    # the optimised loss weighs the KL by beta; the logged ELBO does not
    assert metrics["loss/model"] == pytest.approx(metrics["model/reconstruction"] + 4.0 * metrics["model/kl"], rel=1e-5)
    assert metrics["model/bits_per_dim"] == pytest.approx(-metrics["model/elbo"] / (64 * math.log(2)), rel=1e-5)
    assert metrics["val/loss"] == pytest.approx(-metrics["val/elbo"], rel=1e-6)


def test_training_raises_the_elbo(tmp_path):
    result = train_tiny("vae", tmp_path / "run", "train.max_steps=60", "train.eval_every=60", "optim.lr=3e-3")
    model = aigc.load(result.run_dir)
    untrained = build_model(tiny("vae"))
    from aigc.data import load_dataset

    config = tiny("vae")
    data = load_dataset(config.data, config.model)
    before = untrained.negative_elbo(data.val)
    after = model.module.negative_elbo(data.val)
    assert after["negative_elbo_nats"] < before["negative_elbo_nats"] - 50
    assert after["bits_per_dim"] == pytest.approx(after["negative_elbo_nats"] / (64 * math.log(2)))
    assert after["negative_elbo_nats"] == pytest.approx(after["reconstruction_nats"] + after["kl_nats"])


def test_interpolation_walks_from_seed_a_to_seed_b(tmp_path):
    model = aigc.load(train_tiny("vae", tmp_path / "run").run_dir)
    path = model.generate(PromptImageRequest(count=8, interpolate=(3, 9)))
    assert path.images.shape == (8, 8, 8, 1)
    np.testing.assert_array_equal(path.images[0], model.generate(PromptImageRequest(count=1, seed=3)).images[0])
    np.testing.assert_array_equal(path.images[-1], model.generate(PromptImageRequest(count=1, seed=9)).images[0])
    assert path.parameters["interpolate"] == [3, 9]


def test_reconstruction_returns_originals_then_reconstructions(tmp_path):
    model = aigc.load(train_tiny("vae", tmp_path / "run").run_dir)
    images = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 1), dtype=np.uint8)
    result = model.module.reconstruct(images)
    assert result.images.shape == (8, 8, 8, 1)
    np.testing.assert_array_equal(result.images[:4], images)
    with pytest.raises(AigcError, match="the model takes"):
        model.module.reconstruct(np.zeros((1, 28, 28, 1), np.uint8))


def test_bad_requests_say_what_to_do(tmp_path):
    model = aigc.load(train_tiny("vae", tmp_path / "run").run_dir)
    with pytest.raises(AigcError, match="takes no prompt"):
        model.generate(PromptImageRequest(count=2, prompt="a handwritten seven"))
    with pytest.raises(ValueError, match="guidance"):  # guidance is for diffusion: a VAE's request has no such field
        model.request_class(count=2, guidance=2.0)
    with pytest.raises(AigcError, match="takes no label"):
        model.generate(PromptImageRequest(count=2, labels=[1]))


def test_the_conditional_vae_draws_the_requested_class(tmp_path):
    model = aigc.load(train_tiny("cvae", tmp_path / "run").run_dir)
    batch = model.generate(PromptImageRequest(count=3, seed=0, labels=[7]))
    assert batch.labels == [7, 7, 7]
    other = model.generate(PromptImageRequest(count=3, seed=0, labels=[2]))
    assert not np.array_equal(batch.images, other.images)  # the label reaches the decoder
    reconstructed = model.module.reconstruct(batch.images, labels=[7, 7, 7])
    assert reconstructed.images.shape == (6, 8, 8, 1)
