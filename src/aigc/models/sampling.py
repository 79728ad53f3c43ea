"""The path every generative family's generate() shares: a request becomes seeded noise (one generator per
sample, so a sample does not depend on its batch; slerp walks between two seeds), the network runs in eval
mode, and its [-1, 1] output becomes uint8 images in an ImageBatch with the request's provenance."""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import Tensor, nn

from aigc.generation.requests import keep_seeds


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
    return keep_seeds(request, request_class.model_validate(request.model_dump(exclude_unset=True)))


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
        seeds = request.sample_seeds()  # seed + i, or the seeds of the requests a merged one joined
        generators = [torch.Generator().manual_seed(seed) for seed in seeds]
        noise = torch.stack([torch.randn(shape, generator=g) for g in generators])
    if generator is not None:
        noise, generators = torch.randn(request.count, *shape, generator=generator), [generator] * request.count
    return noise, seeds, generators


def module_device(module: nn.Module) -> torch.device:
    """The device a module runs on: its first parameter's, else its first buffer's (a network whose every layer
    was quantised holds its weights as buffers), else the CPU."""
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")
