"""Blocks and helpers shared by several model families (and nothing family-specific)."""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import Tensor, nn

from aigc.errors import AigcError, ConfigError


def upsampling_plan(image_size: int) -> tuple[int, int]:
    """(doublings, base size): the most stride-2 steps that keep an integer base of at least 4 pixels.
    28 -> (2, 7), 32 -> (3, 4), 64 -> (4, 4)."""
    doublings = 0
    while image_size % (2 ** (doublings + 1)) == 0 and image_size // 2 ** (doublings + 1) >= 4:
        doublings += 1
    return doublings, image_size // 2**doublings


def decoder_plan(image_size: int, width: int) -> tuple[int, int, int]:
    """(doublings, base size, base channels) of a decoder that projects to a base x base map and upsamples
    it to image_size, halving the channels at each stride-2 step down to `width` before the last one."""
    doublings, base = upsampling_plan(image_size)
    return doublings, base, width * 2 ** (doublings - 1)


@contextlib.contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Run in eval mode (BatchNorm uses running stats, dropout is off), then restore the previous mode.

    Generation must never update BatchNorm statistics or depend on the other samples in the batch.
    """
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


def seeded_normal(seeds: list[int], shape: tuple[int, ...], device: torch.device | str = "cpu") -> torch.Tensor:
    """One standard-normal tensor of `shape` per seed, stacked: sample i depends on seeds[i] alone.

    Drawn on the CPU so that the same seed gives the same noise on every device.
    """
    draws = [torch.randn(shape, generator=torch.Generator().manual_seed(seed)) for seed in seeds]
    return torch.stack(draws).to(device)


def to_uint8_images(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float NCHW -> uint8 NHWC, rounding to the nearest level."""
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu()


def image_batch(model: nn.Module, images: Tensor, request, seeds: list[int], labels: list[int] | None, prompts: list[str] | None, **settings):
    """What an image model's generate() returns: uint8 images with the settings their PNGs record — the
    sampling `settings` (sampler, steps, guidance), the prompts and their encoder, and the interpolation.
    (The generation pipeline adds the checkpoint it was loaded from.)"""
    from aigc.generation.outputs import ImageBatch

    parameters = dict(settings)
    if prompts is not None:
        parameters["prompts"] = prompts if len(set(prompts)) > 1 else prompts[0]
        parameters["prompt_encoder"] = model.config.prompt_encoder
    if getattr(request, "interpolate", None) is not None:
        parameters["interpolate"] = list(request.interpolate)
    return ImageBatch(images=to_uint8_images(images).numpy(), seeds=seeds, labels=labels,
                      model=model.family_name, parameters=parameters)


def norm_2d(kind: str, channels: int) -> nn.Module:
    """Normalisation after a convolution. "layer" normalises over (C, H, W) per sample (GroupNorm with one
    group), which keeps samples independent, as a gradient penalty requires."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)  # defaults: eps=1e-5, momentum=0.1 (never BatchNorm2d(C, 0.8))
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    return nn.Identity()


def norm_1d(kind: str, features: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm1d(features)
    if kind == "layer":
        return nn.LayerNorm(features)
    return nn.Identity()


def maybe_spectral_norm(layer: nn.Module, enabled: bool) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018, https://arxiv.org/abs/1802.05957) of a layer's weight."""
    return nn.utils.parametrizations.spectral_norm(layer) if enabled else layer


class ConditionEmbedding(nn.Module):
    """What a conditional generator is told, as one vector per sample: a class label or a prompt embedding.

    kind "class": a learned embedding per class; kind "text": an MLP on the frozen prompt encoder's
    embedding. Both keep one extra learned "no condition" vector, which classifier-free guidance trains
    by dropping the condition (Ho & Salimans 2022, https://arxiv.org/abs/2207.12598, Algorithm 1) and
    samples with at guidance time. kind "none" returns None.
    """

    def __init__(self, kind: str, out_features: int, *, num_classes: int | None = None, text_dim: int | None = None):
        super().__init__()
        self.kind = kind
        if kind == "class":
            self.table = nn.Embedding(num_classes + 1, out_features)  # row num_classes = "no condition"
            self.num_classes = num_classes
        elif kind == "text":
            self.standardize = caption_standardizer(text_dim)  # removes the captions' common direction
            self.project = nn.Sequential(nn.Linear(text_dim, out_features), nn.SiLU(), nn.Linear(out_features, out_features))
            self.null = nn.Parameter(torch.zeros(out_features))

    def forward(self, condition: torch.Tensor | None, drop: torch.Tensor | None = None) -> torch.Tensor | None:
        """condition: labels [B] (int64) or text embeddings [B, D]; drop: bool [B], True = no condition."""
        if self.kind == "none":
            return None
        if self.kind == "class":
            labels = condition if drop is None else torch.where(drop, torch.full_like(condition, self.num_classes), condition)
            return self.table(labels)  # [B, out]
        embedded = self.project(self.standardize(condition))  # [B, out]
        if drop is not None:
            embedded = torch.where(drop[:, None], self.null.expand_as(embedded), embedded)
        return embedded

    def unconditional(self, count: int, device: torch.device) -> torch.Tensor | None:
        """The "no condition" vector for `count` samples (guidance's unconditional branch)."""
        if self.kind == "none":
            return None
        if self.kind == "class":
            return self.table(torch.full((count,), self.num_classes, device=device, dtype=torch.long))
        return self.null.expand(count, -1)


def sinusoidal_embedding(positions: torch.Tensor, dim: int, max_period: float = 10_000.0, *, interleave: bool = False) -> torch.Tensor:
    """[N] positions -> [N, dim] sines and cosines of geometric frequencies 1 / max_period^(i / (dim // 2))
    (Vaswani et al. 2017, §3.5). interleave=True is the paper's layout, PE[p, 2i] = sin, PE[p, 2i + 1] = cos
    (the transformers' position tables); False puts the cosines before the sines, as diffusion U-Nets embed
    timesteps (Ho et al. 2020, Appendix B). An odd dim gets one zero column."""
    half = dim // 2
    frequencies = torch.exp(-torch.log(torch.tensor(max_period)) * torch.arange(half, dtype=torch.float32) / half)
    angles = positions.float()[:, None] * frequencies.to(positions.device)[None, :]  # [N, half]
    if interleave:
        embedding = torch.stack([torch.sin(angles), torch.cos(angles)], dim=2).flatten(1)  # [N, 2 * half]
    else:
        embedding = torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)  # [N, 2 * half]
    return torch.nn.functional.pad(embedding, (0, dim % 2))


def gaussian_kl(mean: Tensor, log_variance: Tensor) -> Tensor:
    """KL(N(mean, exp(log_variance)) || N(0, I)) per sample, summed over the other dims [B]:
    0.5 * sum(mean^2 + var - 1 - log var) (Kingma & Welling 2013, Appendix B). Always >= 0.
    The VAE's prior term and the GAN's conditioning augmentation (StackGAN) both use it."""
    return 0.5 * (mean.pow(2) + log_variance.exp() - 1.0 - log_variance).flatten(1).sum(dim=1)


def caption_standardizer(dim: int) -> nn.BatchNorm1d:
    """Standardises prompt embeddings per dimension with running statistics of the training captions.

    Sentence embeddings of captions share a large common direction ("a handwritten seven" and "a handwritten
    one" have cosine 0.8); standardising each dimension (BatchNorm without affine, cumulative average)
    removes it, so the differences that name the content reach the network at full scale. Eval mode uses
    the statistics."""
    return nn.BatchNorm1d(dim, affine=False, momentum=None)


# ---------------------------------------------------------------- conditioning and noise of generative families


def slerp(start: Tensor, end: Tensor, fractions: Tensor) -> Tensor:
    """Spherical interpolation between two noise tensors, one result per fraction in [0, 1]."""
    a, b = start.flatten(), end.flatten()
    cosine = (a @ b / (a.norm() * b.norm())).clamp(-1, 1)
    angle = torch.acos(cosine)
    if angle.abs() < 1e-4:  # nearly parallel: linear interpolation is exact enough
        mixed = [(1 - f) * a + f * b for f in fractions]
    else:
        mixed = [(torch.sin((1 - f) * angle) * a + torch.sin(f * angle) * b) / torch.sin(angle) for f in fractions]
    return torch.stack(mixed).view(len(fractions), *start.shape)


def as_request(request, request_class: type):
    """`request` as the family's request class (a plain ImageRequest, say, gets the class's defaults)."""
    if isinstance(request, request_class):
        return request
    return request_class.model_validate(request.model_dump(exclude_unset=True))


def request_noise(request, shape: tuple[int, ...], generator: torch.Generator | None = None) -> tuple[Tensor, list[int], list[torch.Generator]]:
    """The starting noise of each image, its seed, and a per-image generator for any later randomness.

    Image i draws from its own generator seeded with seed + i, so it does not depend on the batch; with
    `request.interpolate = (A, B)` the images walk from seed A's noise to seed B's. With `generator` given,
    all noise comes from it instead (the seeds are still recorded).
    """
    if getattr(request, "interpolate", None) is not None:
        first, last = request.interpolate
        ends = [torch.randn(shape, generator=torch.Generator().manual_seed(seed)) for seed in (first, last)]
        noise = slerp(ends[0], ends[1], torch.linspace(0, 1, request.count))
        seeds = [first] * request.count
        generators = [torch.Generator().manual_seed(first + 1_000_003 * i) for i in range(request.count)]
    else:
        seeds = [request.seed + index for index in range(request.count)]
        generators = [torch.Generator().manual_seed(seed) for seed in seeds]
        noise = torch.stack([torch.randn(shape, generator=g) for g in generators])
    if generator is not None:
        noise, generators = torch.randn(request.count, *shape, generator=generator), [generator] * request.count
    return noise, seeds, generators


def resolve_condition(model: nn.Module, request, device: torch.device, kind: str | None = None) -> tuple[Tensor | None, list[int] | None, list[str] | None]:
    """(condition tensor, labels, prompts) for a request: labels [B] for class models, prompt embeddings
    [B, D] for text models; errors that say what to do when the request does not fit the model."""
    config = model.config
    kind = kind or config.conditioning  # "none", "class" or "text"
    prompt = getattr(request, "prompt", None)
    if kind != "text" and prompt is not None:
        described = "unconditional" if kind == "none" else "class-conditional"
        raise AigcError(
            f"this model is {described} and takes no prompt",
            field="prompt",
            fix="leave --prompt out" + (" and choose classes with --label" if kind == "class" else "")
            + "; text-to-image needs a t2i-* model",
        )
    if kind == "none":
        if getattr(request, "guidance", None) is not None:
            raise AigcError("an unconditional model has nothing to guide towards", field="guidance", fix="leave --guidance out")
        request.labels_for(None)  # a label for an unconditional model is an error too
        return None, None, None
    if kind == "class":
        labels = request.labels_for(config.num_classes)
        return torch.tensor(labels, device=device), labels, None
    # text
    prompts = request.prompts_for() if hasattr(request, "prompts_for") else None
    labels = None
    if prompts is None:
        if config.class_prompts is None:
            raise AigcError(
                "this text-to-image model needs a prompt",
                field="prompt",
                fix='give one, e.g. --prompt "a handwritten seven" or --prompt "一个笑脸"',
            )
        labels = request.labels_for(len(config.class_prompts))  # label k stands for class k's caption
        prompts = [config.class_prompts[label] for label in labels]
    elif request.labels is not None:
        raise AigcError("give a prompt or labels, not both", field="labels", fix="leave --label out when you give --prompt")
    from aigc.prompts import encode_prompts

    return encode_prompts(config.prompt_encoder, prompts).to(device), labels, prompts


def condition_classes(config, kind: str) -> int | None:
    """How many labels generation takes: a class-conditional model's classes, or the captioned classes whose
    prompts the labels of a text-conditional model stand for; None where labels mean nothing."""
    if kind == "class":
        return config.num_classes
    if kind == "text" and config.class_prompts is not None:
        return len(config.class_prompts)
    return None


def preview_request(model: nn.Module, kind: str, per_class: int = 8):
    """What the loop's sample grids show: 64 fixed seeds; for conditional models a column per class (labels
    cycle 0..K-1), and for prompt models without classes one prompt."""
    if model.num_classes is not None:
        return model.request_class(count=model.num_classes * per_class, seed=0)
    if kind == "text":
        return model.request_class(count=16, seed=0, prompt="a smiling face")
    return model.request_class(count=64, seed=0)


def check_conditioning(config, kind: str | None = None) -> None:
    kind = kind or config.conditioning
    if kind == "text" and config.text_embedding_dim is None:
        raise ConfigError(
            "text conditioning needs prompt embeddings, which come from a captioned dataset",
            field="data.name",
            fix="train on a captioned dataset (mnist-captions, fashion-mnist-captions, digits-captions, emoji), "
            "or set model.text_embedding_dim to the prompt encoder's size",
        )
    if kind == "class" and config.num_classes is None:
        raise ConfigError("class conditioning needs the number of classes", field="model.num_classes", fix="use a labelled dataset or set model.num_classes")


def batch_condition(config, batch: dict[str, Tensor], kind: str | None = None) -> Tensor | None:
    """The condition of a training batch: its labels or its caption embeddings."""
    kind = kind or config.conditioning
    if kind == "class":
        return batch["labels"]
    if kind == "text":
        if "text_embeddings" not in batch:
            raise ConfigError("the dataset gives no captions", field="data.name", fix="use a captioned dataset (mnist-captions, emoji, ...)")
        return batch["text_embeddings"]
    return None


def per_sample_gradient_penalty(critic, real: Tensor, fake: Tensor, *condition) -> Tensor:
    """WGAN-GP's E[(||grad_x D(x_hat)||_2 - 1)^2] on points x_hat between real and fake samples of any shape
    [B, ...] (waveforms [B, 1, T], spectrograms or images [B, C, H, W]); Gulrajani et al. 2017,
    https://arxiv.org/abs/1704.00028, Algorithm 1, lines 6-7. One mixing weight per sample, broadcast over
    the sample's own dimensions only, and the norm taken per sample over all of them (flatten(1))."""
    epsilon = torch.rand(real.shape[0], *([1] * (real.ndim - 1)), device=real.device, dtype=real.dtype)  # [B, 1, ...]
    mixed = (epsilon * real + (1 - epsilon) * fake).requires_grad_(True)
    (gradients,) = torch.autograd.grad(critic(mixed, *condition).sum(), mixed, create_graph=True)
    return ((gradients.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
