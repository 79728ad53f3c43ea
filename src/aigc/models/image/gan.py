"""The GAN family: classic MLP GAN, DCGAN, conditional GAN, WGAN and WGAN-GP in one file.

They share one training step and differ only in settings, so each registered name below is a config class
with that paper's defaults:

    gan      Goodfellow et al. 2014, https://arxiv.org/abs/1406.2661     MLPs, non-saturating loss
    dcgan    Radford et al. 2015, https://arxiv.org/abs/1511.06434       strided (transposed) convolutions + BatchNorm
    cgan     Mirza & Osindero 2014, https://arxiv.org/abs/1411.1784      class-conditional generator and discriminator;
             the discriminator sees the label by concatenation or by projection
             (Miyato & Koyama 2018, https://arxiv.org/abs/1802.05637)
    wgan     Arjovsky et al. 2017, https://arxiv.org/abs/1701.07875      Wasserstein critic, weight clipping, RMSprop
    wgan-gp  Gulrajani et al. 2017, https://arxiv.org/abs/1704.00028     gradient penalty on per-sample gradient norms

Options for every one of them: `loss` (minimax, non-saturating, hinge, wasserstein), `spectral_norm`,
`discriminator_norm`, `critic_steps`, `conditional`.
"""

from __future__ import annotations

from typing import Iterator, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn

from aigc.config import BaseConfig, OptimConfig, build_optimizer
from aigc.generation.outputs import ImageBatch
from aigc.generation.requests import LatentImageRequest, PromptImageRequest
from aigc.models.conditioning import batch_condition, caption_standardizer, check_conditioning, condition_classes, preview_request, resolve_condition
from aigc.models.layers import decoder_plan, gaussian_kl, maybe_spectral_norm, norm_1d, norm_2d, upsampling_plan
from aigc.models.sampling import as_request, eval_mode, image_batch, module_device, request_noise
from aigc.registry import register_variant

# ---------------------------------------------------------------------------------------------- config


class GANConfig(BaseConfig):
    architecture: Literal["mlp", "dcgan"] = "mlp"  # fully connected (2014) or convolutional (DCGAN)
    image_size: int = Field(28, ge=8)  # height = width of generated images
    channels: Literal[1, 3] = 1  # 1 grayscale, 3 RGB
    latent_dim: int = Field(100, ge=1)  # length of the noise vector z
    width: int = Field(64, ge=4)  # conv: channels of the widest-resolution layer; mlp: hidden units / 4
    conditional: bool = False  # generate a requested class or prompt (needs labelled or captioned data)
    condition_source: Literal["class"] = "class"  # what a conditional GAN is told (prompts: the t2i-cgan family)
    prompt_encoder: str = "use-multilingual"  # condition_source = "text": a frozen encoder (`aigc.prompts`)
    text_embedding_dim: int | None = Field(None, ge=1)  # condition_source = "text": filled in from the captioned dataset
    class_prompts: list[str] | None = None  # captioned classes: the prompt that `labels` stand for, from the dataset
    num_classes: int | None = Field(None, ge=2)  # filled in from the dataset when left empty
    label_embedding_dim: int = Field(32, ge=1)  # size of the learned label embedding (or prompt condition) fed to the generator
    # prompts: weight of the conditioning augmentation's KL (summed over dimensions) in the generator loss.
    # StackGAN's code weighs the per-dimension mean by 2 (0.0625 on this sum); t2i-cgan-mnist after 1,500 steps
    # followed held-out prompts in 30% / 75% / 81% of images at 1 / 0.1 / 0.02, all of them varied.
    augmentation_kl: float = Field(0.02, ge=0)
    conditioning: Literal["concat", "projection"] = "projection"  # how the discriminator sees the label
    loss: Literal["minimax", "non-saturating", "hinge", "wasserstein"] = "non-saturating"
    discriminator_norm: Literal["batch", "layer", "none"] = "none"
    generator_norm: Literal["batch", "none"] = "batch"  # conv generators only; the MLP generator has none
    spectral_norm: bool = False  # spectral normalisation of every discriminator weight
    critic_steps: int = Field(1, ge=1)  # discriminator updates per generator update (n_critic)
    weight_clip: float | None = Field(None, gt=0)  # WGAN: clip critic weights to [-c, c] after each update
    gradient_penalty: float = Field(0.0, ge=0)  # WGAN-GP lambda; 0 = off
    dropout: float = Field(0.0, ge=0, lt=1)  # MLP discriminator dropout (the 2014 paper used it)

    @model_validator(mode="after")
    def _consistent(self) -> "GANConfig":
        if self.gradient_penalty > 0 and self.discriminator_norm == "batch":
            # BatchNorm mixes samples, so d D(x_i)/d x_i is no longer a per-sample gradient (WGAN-GP paper, §4).
            raise ValueError("gradient_penalty needs a per-sample discriminator: set discriminator_norm to 'layer' or 'none'")
        if self.conditional and self.condition_source == "text" and self.conditioning == "concat":
            raise ValueError("a text-conditioned discriminator sees the prompt by projection: set conditioning to 'projection'")
        if self.architecture == "dcgan" and self.image_size % 4:
            raise ValueError(f"dcgan needs image_size divisible by 4 (got {self.image_size}); try 28, 32 or 64")
        return self


class DCGANConfig(GANConfig):
    architecture: Literal["mlp", "dcgan"] = "dcgan"
    discriminator_norm: Literal["batch", "layer", "none"] = "batch"


class CGANConfig(DCGANConfig):
    conditional: bool = True


class T2ICGANConfig(CGANConfig):
    condition_source: Literal["text"] = "text"  # a prompt, embedded by the frozen `prompt_encoder`


class WGANConfig(DCGANConfig):
    loss: Literal["minimax", "non-saturating", "hinge", "wasserstein"] = "wasserstein"
    critic_steps: int = Field(5, ge=1)
    weight_clip: float | None = Field(0.01, gt=0)


class WGANGPConfig(DCGANConfig):
    loss: Literal["minimax", "non-saturating", "hinge", "wasserstein"] = "wasserstein"
    critic_steps: int = Field(5, ge=1)
    gradient_penalty: float = Field(10.0, ge=0)
    discriminator_norm: Literal["batch", "layer", "none"] = "layer"


# ------------------------------------------------------------------------------------------ networks


class ConvGenerator(nn.Module):
    """z [B, in] -> linear projection to [B, C0, s, s] -> stride-2 transposed convs -> tanh image."""

    def __init__(self, config: GANConfig, in_features: int):
        super().__init__()
        self.doublings, self.base, self.base_channels = decoder_plan(config.image_size, config.width)
        self.project = nn.Sequential(
            nn.Linear(in_features, self.base_channels * self.base**2, bias=config.generator_norm != "batch"),
        )
        layers: list[nn.Module] = [norm_2d(config.generator_norm, self.base_channels), nn.ReLU(True)]
        channels = self.base_channels
        for _ in range(self.doublings - 1):
            layers += [
                nn.ConvTranspose2d(channels, channels // 2, 4, 2, 1, bias=config.generator_norm != "batch"),
                norm_2d(config.generator_norm, channels // 2),
                nn.ReLU(True),
            ]
            channels //= 2
        layers += [nn.ConvTranspose2d(channels, config.channels, 4, 2, 1), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, inputs: Tensor) -> Tensor:
        hidden = self.project(inputs).view(-1, self.base_channels, self.base, self.base)  # [B, C0, s, s]
        return self.body(hidden)  # [B, channels, image_size, image_size]


class MLPGenerator(nn.Module):
    def __init__(self, config: GANConfig, in_features: int):
        super().__init__()
        self.shape = (config.channels, config.image_size, config.image_size)
        sizes = [in_features, config.width * 4, config.width * 8, config.width * 16]
        layers: list[nn.Module] = []
        for fan_in, fan_out in zip(sizes, sizes[1:]):
            layers += [nn.Linear(fan_in, fan_out), nn.LeakyReLU(0.2, True)]
        layers += [nn.Linear(sizes[-1], config.channels * config.image_size**2), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, inputs: Tensor) -> Tensor:
        return self.body(inputs).view(-1, *self.shape)


class ConvFeatures(nn.Module):
    """image [B, C, H, W] -> stride-2 convs (no norm on the first, as in DCGAN) -> flat features."""

    def __init__(self, config: GANConfig, in_channels: int):
        super().__init__()
        doublings, base = upsampling_plan(config.image_size)
        sn = config.spectral_norm
        layers: list[nn.Module] = [maybe_spectral_norm(nn.Conv2d(in_channels, config.width, 4, 2, 1), sn), nn.LeakyReLU(0.2, True)]
        channels = config.width
        for _ in range(doublings - 1):
            layers += [
                maybe_spectral_norm(nn.Conv2d(channels, channels * 2, 4, 2, 1, bias=config.discriminator_norm == "none"), sn),
                norm_2d(config.discriminator_norm, channels * 2),
                nn.LeakyReLU(0.2, True),
            ]
            channels *= 2
        self.body = nn.Sequential(*layers)
        self.out_features = channels * base * base

    def forward(self, images: Tensor) -> Tensor:
        return self.body(images).flatten(1)  # [B, C_last * s * s]


class MLPFeatures(nn.Module):
    def __init__(self, config: GANConfig, in_features: int):
        super().__init__()
        sn = config.spectral_norm
        sizes = [in_features, config.width * 8, config.width * 4]
        layers: list[nn.Module] = []
        for index, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:])):
            layers += [maybe_spectral_norm(nn.Linear(fan_in, fan_out), sn)]
            if index > 0:
                layers += [norm_1d(config.discriminator_norm, fan_out)]
            layers += [nn.LeakyReLU(0.2, True), nn.Dropout(config.dropout)]
        self.body = nn.Sequential(*layers)
        self.out_features = sizes[-1]

    def forward(self, images: Tensor) -> Tensor:
        return self.body(images.flatten(1))


class StandardizedText(nn.Module):
    """Prompt embeddings standardised per dimension (`layers.caption_standardizer`) so that what differs
    reaches the network, then divided by sqrt(dim) so the vector keeps about unit norm (a projection
    discriminator's logits grow with it: unscaled, they reached +-30 within 300 steps)."""

    def __init__(self, dim: int, unit_norm: bool = True):
        super().__init__()
        self.standardize = caption_standardizer(dim)
        self.scale = dim**-0.5 if unit_norm else 1.0

    def forward(self, embeddings: Tensor) -> Tensor:
        return self.standardize(embeddings) * self.scale


class ConditioningAugmentation(nn.Module):
    """Prompt embedding -> a *sampled* condition c ~ N(mu(t), diag sigma(t)^2), with KL(N(mu, sigma^2) || N(0, I))
    added to the generator's loss (StackGAN, Zhang et al. 2017, https://arxiv.org/abs/1612.03242, §3.1).

    Why: fed a deterministic prompt embedding, the text-to-image generator learnt to ignore its noise and drew
    one image per prompt (t2i-cgan-mnist after 1,500 steps: pixel std across one prompt's images 0.016-0.018,
    real digits of a class ~0.13) with hinge or non-saturating loss, with or without spectral norm — or, with
    the embedding scaled down, stopped following prompts (42%); a sampled condition kept near N(0, I) by the
    KL term makes every prompt a distribution the generator must cover (benchmarks/RESULTS.md has the runs).
    The input is standardised (not scaled down) and the layer keeps PyTorch's default init: at the DCGAN
    init N(0, 0.02) the condition reached the generator ~100x weaker than its noise and the prompts were
    followed by 13% of images."""

    def __init__(self, text_dim: int, out_features: int):
        super().__init__()
        self.standardize = StandardizedText(text_dim, unit_norm=False)
        self.moments = nn.Linear(text_dim, 2 * out_features)  # -> (mu, log sigma^2)

    def forward(self, embeddings: Tensor, epsilon: Tensor) -> tuple[Tensor, Tensor]:
        """embeddings [B, D], epsilon [B, out] ~ N(0, I) -> condition [B, out], KL per sample averaged [scalar]."""
        mean, log_variance = self.moments(self.standardize(embeddings)).chunk(2, dim=1)
        condition = mean + torch.exp(0.5 * log_variance) * epsilon
        return condition, gaussian_kl(mean, log_variance).mean()


class Generator(nn.Module):
    """noise (+ label embedding, or a prompt's sampled condition) -> image in [-1, 1].

    The noise is [B, noise_dim]: z (latent_dim) and, for prompts, the conditioning augmentation's epsilon
    (label_embedding_dim) — so one seed fixes the whole image and seeds still regenerate images alone."""

    def __init__(self, config: GANConfig):
        super().__init__()
        self.latent_dim = config.latent_dim
        self.label_embedding = self.augmentation = None
        if config.conditional and config.condition_source == "class":
            self.label_embedding = nn.Embedding(config.num_classes, config.label_embedding_dim)
        elif config.conditional:
            self.augmentation = ConditioningAugmentation(config.text_embedding_dim, config.label_embedding_dim)
        self.noise_dim = config.latent_dim + (config.label_embedding_dim if self.augmentation is not None else 0)
        in_features = config.latent_dim + (config.label_embedding_dim if config.conditional else 0)
        network = ConvGenerator if config.architecture == "dcgan" else MLPGenerator
        self.network = network(config, in_features)

    def network_input(self, noise: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """(what the network draws from [B, latent + embed], the conditioning KL or None)."""
        z = noise[:, : self.latent_dim]
        if self.label_embedding is not None:
            return torch.cat([z, self.label_embedding(labels)], dim=1), None
        if self.augmentation is not None:
            condition, kl = self.augmentation(labels, noise[:, self.latent_dim :])
            return torch.cat([z, condition], dim=1), kl
        return z, None

    def forward(self, noise: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.network(self.network_input(noise, labels)[0])


class Discriminator(nn.Module):
    """image (+ label) -> one real-valued logit (a critic score for Wasserstein losses)."""

    def __init__(self, config: GANConfig):
        super().__init__()
        self.num_classes = config.num_classes
        self.concat = config.conditional and config.conditioning == "concat"
        self.project = config.conditional and config.conditioning == "projection"
        extra = config.num_classes if self.concat else 0  # one-hot label planes (conv) or entries (mlp)
        if config.architecture == "dcgan":
            self.features = ConvFeatures(config, config.channels + extra)
        else:
            self.features = MLPFeatures(config, config.channels * config.image_size**2 + extra)
        self.head = maybe_spectral_norm(nn.Linear(self.features.out_features, 1), config.spectral_norm)
        # Projection discriminator: logit = psi(phi(x)) + <embed(y), phi(x)>  (Miyato & Koyama 2018, eq. 3)
        self.label_projection = None
        if self.project and config.condition_source == "class":
            self.label_projection = maybe_spectral_norm(nn.Embedding(config.num_classes, self.features.out_features), config.spectral_norm)
        elif self.project:  # text: the same inner product, with a linear map of the prompt embedding
            self.label_projection = nn.Sequential(
                StandardizedText(config.text_embedding_dim),
                maybe_spectral_norm(nn.Linear(config.text_embedding_dim, self.features.out_features, bias=False), config.spectral_norm),
            )
        self.flat_input = config.architecture == "mlp"

    def forward(self, images: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.concat:
            one_hot = F.one_hot(labels, self.num_classes).to(images.dtype)  # [B, K]
            if self.flat_input:
                images = torch.cat([images.flatten(1), one_hot], dim=1)
            else:
                planes = one_hot[:, :, None, None].expand(-1, -1, *images.shape[2:])  # [B, K, H, W]
                images = torch.cat([images, planes], dim=1)
        features = self.features(images)  # [B, F]
        logits = self.head(features).squeeze(1)  # [B]
        if self.label_projection is not None:
            logits = logits + (self.label_projection(labels) * features).sum(dim=1)
        return logits


def init_dcgan_weights(module: nn.Module) -> None:
    """DCGAN paper, §4: weights from N(0, 0.02); BatchNorm scale from N(1, 0.02), shift 0.

    Label embeddings too. Left at PyTorch's N(0, 1), the projection discriminator's <embed(y), phi(x)> is
    ~50x the rest of its logit from the first step: it wins at once (real/fake logits near +20/-8) and the
    generator collapses to one image per class (within-class pixel std 0.02 after 1,500 steps of cgan-mnist,
    against 0.12 with this init and 0.15 for real digits)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
        weight = getattr(module, "parametrizations", None)
        target = module.parametrizations.weight.original if weight is not None else module.weight
        nn.init.normal_(target, 0.0, 0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


# -------------------------------------------------------------------------------------------- losses


def discriminator_loss(kind: str, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    real_logits, fake_logits = real_logits.float(), fake_logits.float()  # fp32 losses: bf16 autocast gives bf16 logits
    if kind in ("minimax", "non-saturating"):
        # -log sigmoid(r) - log(1 - sigmoid(f)), written with softplus for stability
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    if kind == "hinge":  # Lim & Ye 2017; Miyato et al. 2018
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
    return fake_logits.mean() - real_logits.mean()  # wasserstein: the critic maximises E[D(x)] - E[D(G(z))]


def generator_loss(kind: str, fake_logits: Tensor) -> Tensor:
    fake_logits = fake_logits.float()  # fp32 loss under bf16 autocast, as in discriminator_loss
    if kind == "minimax":
        return -F.softplus(fake_logits).mean()  # minimise log(1 - sigmoid(f)) = -softplus(f): saturates early
    if kind == "non-saturating":
        return F.softplus(-fake_logits).mean()  # minimise -log sigmoid(f) (Goodfellow et al. 2014, §3)
    return -fake_logits.mean()  # hinge and wasserstein


def gradient_penalty(discriminator: nn.Module, real: Tensor, fake: Tensor, labels: Tensor | None) -> Tensor:
    """E[(||grad_x D(x_hat)||_2 - 1)^2], x_hat on lines between real and fake (WGAN-GP, Algorithm 1, line 6-7).

    The norm is taken per sample, over all of its pixels and channels: flatten(1) then norm over dim 1.
    """
    epsilon = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)  # one mix per sample
    mixed = (epsilon * real + (1 - epsilon) * fake).requires_grad_(True)
    scores = discriminator(mixed, labels)
    (gradients,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)  # [B, C, H, W]
    norms = gradients.flatten(1).norm(2, dim=1)  # [B]
    return ((norms - 1) ** 2).mean()


# --------------------------------------------------------------------------------------------- model


class GAN(nn.Module):
    """A generator and a discriminator trained against each other; the loop steps each optimizer."""

    # What generate() takes (the CLI and the studio build it from user input): count, seed, labels, and
    # `interpolate`, a walk between two seeds' noise.
    request_class = LatentImageRequest
    # Weights that generation never uses: a zoo export leaves them out (t2i-cgan-mnist's discriminator holds
    # 1.64M of its 2.01M parameters, 1.61M of them in the prompt projection).
    training_only = ("discriminator.",)

    def __init__(self, config: GANConfig):
        super().__init__()
        if config.conditional:
            check_conditioning(config, config.condition_source)
        self.config = config
        self.generator = Generator(config)
        self.discriminator = Discriminator(config)
        if config.architecture == "dcgan":
            self.apply(init_dcgan_weights)
            if self.generator.augmentation is not None:
                self.generator.augmentation.moments.reset_parameters()  # see ConditioningAugmentation
        # Discriminator updates so far: decides which steps also update the generator. A buffer, so that
        # it is saved in checkpoints and resume continues the critic/generator rhythm exactly.
        self.register_buffer("discriminator_updates", torch.zeros((), dtype=torch.long))

    @property
    def condition_kind(self) -> str:
        """What generation is conditioned on: "none", "class" or "text"."""
        return self.config.condition_source if self.config.conditional else "none"

    @property
    def num_classes(self) -> int | None:
        return condition_classes(self.config, self.condition_kind)

    def batch_condition(self, batch: dict[str, Tensor]) -> Tensor | None:
        return batch_condition(self.config, batch, self.condition_kind) if self.config.conditional else None

    def configure_optimizers(self, optim: OptimConfig) -> dict[str, torch.optim.Optimizer]:
        return {
            "discriminator": build_optimizer(self.discriminator.parameters(), optim),
            "generator": build_optimizer(self.generator.parameters(), optim),
        }

    def training_step(self, batch: dict[str, Tensor]) -> Iterator[tuple[str, Tensor, dict[str, Tensor]]]:
        config = self.config
        real = batch["images"]  # [B, C, H, W] in [-1, 1]
        labels = self.batch_condition(batch)  # labels or prompt embeddings; fakes get the real batch's
        noise = torch.randn(real.shape[0], self.generator.noise_dim, device=real.device)
        update_generator = (int(self.discriminator_updates) + 1) % config.critic_steps == 0

        # 1. Discriminator: real vs. fake (fakes detached: this loss must not reach the generator).
        with torch.set_grad_enabled(update_generator):
            inputs, kl = self.generator.network_input(noise, labels)
            fake = self.generator.network(inputs)
        real_logits = self.discriminator(real, labels)
        fake_logits = self.discriminator(fake.detach(), labels)
        loss = discriminator_loss(config.loss, real_logits, fake_logits)
        logs = {"real_score": real_logits.mean().detach(), "fake_score": fake_logits.mean().detach()}
        if config.loss == "wasserstein":
            logs["wasserstein_estimate"] = (real_logits.mean() - fake_logits.mean()).detach()
        if config.gradient_penalty > 0:
            penalty = gradient_penalty(self.discriminator, real, fake.detach(), labels)
            loss = loss + config.gradient_penalty * penalty
            logs["gradient_penalty"] = penalty.detach()
        yield "discriminator", loss, logs
        # The loop has now stepped the discriminator's optimizer.

        # 2. WGAN: keep the critic Lipschitz by clipping its weights after every update.
        if config.weight_clip is not None:
            with torch.no_grad():
                for parameter in self.discriminator.parameters():
                    parameter.clamp_(-config.weight_clip, config.weight_clip)
        self.discriminator_updates += 1
        if not update_generator:
            return

        # 3. Generator: its loss goes through the discriminator that was just updated.
        loss = generator_loss(config.loss, self.discriminator(fake, labels))
        if kl is None:
            yield "generator", loss, {}
            return
        yield "generator", loss + config.augmentation_kl * kl, {"augmentation_kl": kl.detach()}

    @torch.no_grad()
    def validation_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Losses on held-out real images; a train/val gap in `real_score` shows a memorising discriminator."""
        real = batch["images"]
        labels = self.batch_condition(batch)
        with eval_mode(self):
            fake = self.generator(torch.randn(real.shape[0], self.generator.noise_dim, device=real.device), labels)
            real_logits = self.discriminator(real, labels)
            fake_logits = self.discriminator(fake, labels)
        return {
            "discriminator_loss": discriminator_loss(self.config.loss, real_logits, fake_logits),
            "generator_loss": generator_loss(self.config.loss, fake_logits),
            "real_score": real_logits.mean(),
        }

    def preview_request(self):
        return preview_request(self, self.condition_kind)

    @torch.no_grad()
    def generate(self, request: PromptImageRequest, generator: torch.Generator | None = None) -> ImageBatch:
        """Images for a request. Image i uses seed `request.seed + i`, so it can be regenerated alone;
        `interpolate=(A, B)` walks from seed A's noise to seed B's; with `generator` given, all noise
        comes from it instead."""
        request = as_request(request, PromptImageRequest)
        device = module_device(self)
        condition, labels, prompts = resolve_condition(self, request, device, self.condition_kind)
        noise, seeds, _ = request_noise(request, (self.generator.noise_dim,), generator)
        with eval_mode(self):
            images = self.generator(noise.to(device), condition)
        return image_batch(self, images, request, seeds, labels, prompts)

    family_name = "gan"


# One class serves every variant; `register_variant` gives each name its subclass (family_name, what it takes).
_VARIANTS = [
    ("gan", GANConfig, LatentImageRequest, "MLP GAN, non-saturating loss (Goodfellow et al. 2014)"),
    ("dcgan", DCGANConfig, LatentImageRequest, "Deep convolutional GAN (Radford et al. 2015)"),
    ("cgan", CGANConfig, LatentImageRequest, "Class-conditional DCGAN with a projection discriminator (Mirza & Osindero 2014; Miyato & Koyama 2018)"),
    ("t2i-cgan", T2ICGANConfig, PromptImageRequest, "Text-to-image conditional DCGAN: a frozen prompt encoder's embedding conditions the generator and a projection discriminator"),
    ("wgan", WGANConfig, LatentImageRequest, "Wasserstein GAN: weight clipping, RMSprop, 5 critic steps (Arjovsky et al. 2017)"),
    ("wgan-gp", WGANGPConfig, LatentImageRequest, "WGAN with gradient penalty, layer-normalised critic (Gulrajani et al. 2017)"),
]
for _name, _config, _request_class, _description in _VARIANTS:
    register_variant(_name, GAN, modality="image", config=_config, request_class=_request_class, description=_description)
