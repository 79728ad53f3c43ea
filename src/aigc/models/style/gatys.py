"""Gatys et al. 2015, "A Neural Algorithm of Artistic Style" (https://arxiv.org/abs/1508.06576): optimise the
image itself so that its VGG features match the content image's at one layer and its Gram matrices match
the style image's at several. Any style, no training; seconds to minutes per image (benchmarks/style_speed.py).

    x* = argmin_x  content(x) + alpha * style_weight * style(x) + tv_weight * tv(x)        (perceptual.py)

1. read the content and style images (conversions said), refuse a style image smaller than the deepest
   style layer's receptive field;
2. coarse to fine (`scales` > 1, for big images): optimise at size / 2**(scales-1) first, upsample the result
   as the start of the next level; content and style images are resized with the same ratio at each level;
3. at each level L-BFGS (the paper's optimiser; `optimizer="adam"` for a steadier, cheaper step) over the
   [-1, 1] pixels, starting from the content (default) or from seeded noise (`init="noise"`);
4. clip to [-1, 1]; with `preserve_color`, keep the content's colours (luminance-only transfer).

Seeded and deterministic: the same request gives the same pixels (noise init draws from seed + i).
No weights of its own: `Gatys()` is ready to use, `generate` goes through the one pipeline like any model.
"""

from __future__ import annotations

import warnings
from typing import Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from aigc.backbones.vgg import frozen_vgg
from aigc.errors import AigcError, AigcWarning
from aigc.generation.outputs import ImageBatch
from aigc.generation.progress import report_progress
from aigc.generation.requests import IMAGE_INPUT, StyleRequest
from aigc.models.sampling import image_batch
from aigc.models.style.perceptual import (
    CONTENT_LAYER, STYLE_LAYERS, PerceptualLoss, check_style_size, preserve_colour, read_rgb, resize_long_side,
)

MIN_LEVEL_SIZE = 64  # the coarsest level of a multi-scale run is never smaller (VGG's pools need room)


class GatysRequest(StyleRequest):
    steps: int = Field(200, ge=1, le=5000)  # optimiser iterations in all, split evenly over the scales
    optimizer: Literal["lbfgs", "adam"] = "lbfgs"  # L-BFGS converges in fewer steps; Adam costs less per step
    lr: float = Field(0.02, gt=0, le=1)  # Adam's step size on [-1, 1] pixels (L-BFGS uses 1)
    init: Literal["content", "noise"] = "content"  # where the optimisation starts; noise is drawn from seed + i
    scales: int = Field(1, ge=1, le=4)  # coarse-to-fine levels (2: half size, then full size)
    content_weight: float = Field(1.0, ge=0)  # weight of the content term (relative error at content_layer)
    style_weight: float = Field(10.0, ge=0)  # weight of the style term (mean relative Gram error), times alpha; lower keeps more content
    tv_weight: float = Field(0.0, ge=0)  # total variation: smooths pixel noise
    content_layer: str = CONTENT_LAYER  # relu4_2 (the paper) or relu3_3 (keeps more detail)
    style_layers: list[str] = list(STYLE_LAYERS)  # VGG layers whose Gram matrices are matched
    padding: Literal["zeros", "reflect"] = "zeros"  # the VGG's padding; reflect avoids dark borders


class Gatys(nn.Module):
    """Optimisation-based style transfer; holds no weights (the frozen VGG is shared, outside the state dict)."""

    request_class = GatysRequest
    family_name = "gatys"

    def __init__(self, device: str | torch.device = "cpu"):
        super().__init__()
        self.device = torch.device(device)

    def loss(self, request: GatysRequest) -> PerceptualLoss:
        return PerceptualLoss(
            frozen_vgg(self.device, padding=request.padding), content_layer=request.content_layer,
            style_layers=request.style_layers, content_weight=request.content_weight,
            style_weight=request.style_weight * request.alpha, tv_weight=request.tv_weight,
        )

    def generate(self, request: GatysRequest) -> ImageBatch:
        perceptual = self.loss(request)
        content, notes, content_sha = read_rgb(request.content, field="content")
        content = resize_long_side(content, request.size).to(self.device)
        styles, style_shas = [], []
        layer, field_size = perceptual.deepest_style_layer()
        for path in request.style:
            style, style_notes, digest = read_rgb(path, field="style")
            check_style_size(style, field_size, layer)
            styles.append(resize_long_side(style, request.size).to(self.device))
            notes, style_shas = notes + style_notes, style_shas + [digest]
        if not styles:
            raise AigcError("Gatys needs a style image", field="style", fix="add --style PATH (repeat it to blend several)")
        for note in notes:
            warnings.warn(AigcWarning(note), stacklevel=2)
        seeds = [request.seed + index for index in range(request.count)]
        images, history = [], []
        for index, seed in enumerate(seeds):
            result, losses = self.stylise(content, styles, request, perceptual, seed, index)
            images.append(result)
            history.append(losses)
        output = torch.cat(images)
        if request.preserve_color:
            output = preserve_colour(output, content)
        vgg = perceptual.vgg
        return image_batch(
            self, output, request, seeds, None, None, method="gatys", content_sha256=content_sha[:16],
            style_sha256=[digest[:16] for digest in style_shas], style_blend=request.blend(), alpha=request.alpha,
            size=request.size, steps=request.steps, optimizer=request.optimizer, init=request.init, scales=request.scales,
            content_weight=request.content_weight, style_weight=request.style_weight, tv_weight=request.tv_weight,
            content_layer=request.content_layer, style_layers=list(request.style_layers), padding=request.padding,
            preserve_color=request.preserve_color, vgg=f"{vgg.arch} {vgg.weights_sha256[:16]}",
            final_losses=history, conversions=notes,
        )

    def level_sizes(self, request: GatysRequest) -> list[int]:
        """Long sides of the coarse-to-fine levels, coarsest first."""
        sizes = [max(MIN_LEVEL_SIZE, request.size // 2**level) for level in reversed(range(request.scales))]
        return sorted(set(sizes))

    def stylise(self, content: Tensor, styles: list[Tensor], request: GatysRequest, perceptual: PerceptualLoss,
                seed: int, index: int) -> tuple[Tensor, dict[str, float]]:
        """One image: the optimisation over all levels (steps 2-4 of the module docstring)."""
        sizes = self.level_sizes(request)
        steps_per_level = [request.steps // len(sizes) + (1 if level < request.steps % len(sizes) else 0) for level in range(len(sizes))]
        image: Tensor | None = None
        done, total = index * request.steps, request.count * request.steps
        losses: dict[str, float] = {}
        for size, steps in zip(sizes, steps_per_level):
            level_content = resize_long_side(content, size)
            ratio = size / request.size
            level_styles = [resize_long_side(style, max(16, round(max(style.shape[2:]) * ratio))) for style in styles]
            targets = perceptual.targets(level_content, level_styles, request.blend())
            if image is None:
                image = self.initial(level_content, request, seed)
            else:
                image = torch.nn.functional.interpolate(image, size=level_content.shape[2:], mode="bilinear", align_corners=False)
            image = image.detach().clone().requires_grad_(True)
            losses = self.optimise(image, targets, perceptual, request, steps, done, total)
            done += steps
        return image.detach().clamp(-1, 1), losses

    def initial(self, content: Tensor, request: GatysRequest, seed: int) -> Tensor:
        if request.init == "content":
            return content.clone(memory_format=torch.contiguous_format)  # L-BFGS flattens its gradient with view()
        generator = torch.Generator().manual_seed(seed)  # on the CPU: the same noise on every device
        return (torch.randn(content.shape, generator=generator) * 0.5).clamp(-1, 1).to(content.device)

    def optimise(self, image: Tensor, targets, perceptual: PerceptualLoss, request: GatysRequest, steps: int,
                 done: int, total: int) -> dict[str, float]:
        """`steps` iterations of the optimiser on `image` in place; the last loss terms, as floats."""
        last: dict[str, Tensor] = {}
        evaluations = [0]

        def closure() -> Tensor:
            optimiser.zero_grad(set_to_none=True)
            terms = perceptual.terms(image, targets)
            terms["total"].sum().backward()
            last.update({name: value.detach().sum() for name, value in terms.items()})
            evaluations[0] += 1
            report_progress(min(done + evaluations[0], total), total)
            return terms["total"].sum()

        if request.optimizer == "lbfgs":
            # One step() runs up to max_iter iterations; no tolerance stop, so `steps` means steps.
            optimiser = torch.optim.LBFGS([image], lr=1.0, max_iter=steps, max_eval=steps + steps // 4 + 1,
                                          history_size=50, tolerance_grad=-1.0, tolerance_change=-1.0)
            optimiser.step(closure)
        else:
            optimiser = torch.optim.Adam([image], lr=request.lr)
            for _ in range(steps):
                optimiser.step(closure)
        return {name: round(float(value), 6) for name, value in last.items()}


# ------------------------------------------------------------------------------------------- the studio

# The studio runs Gatys as a job on a shared CPU: its size and steps are capped so a job takes seconds to a couple
# of minutes. Measured at one thread on this machine (AMD EPYC; benchmarks/style_speed.py --clock cpu): 0.30 CPU-s
# per L-BFGS step at 128x128, 1.14 at 256x256, so the caps (256 px, 100 steps) are at most ~2 CPU-minutes for a
# square picture (a 3:2 photo ~1.3) and the defaults (128 px, 50 steps) ~15 CPU-seconds.
STUDIO_MAX_SIZE = 256
STUDIO_MAX_STEPS = 100


class StudioGatysRequest(StyleRequest):
    """Gatys with its cost capped (the studio's "gatys" entry): one image, at most 256 px and 100 steps."""

    count: int = Field(1, ge=1, le=1)  # each image is its own optimisation
    style: list[str] = Field(min_length=1, json_schema_extra=IMAGE_INPUT)  # required here: refused when the job is sent, not when it runs
    size: int = Field(128, ge=64, le=STUDIO_MAX_SIZE)  # long side of the output, in pixels
    steps: int = Field(50, ge=1, le=STUDIO_MAX_STEPS)  # L-BFGS iterations
    style_weight: float = Field(10.0, ge=0)  # weight of the style term, times alpha; lower keeps more content
    init: Literal["content", "noise"] = "content"  # where the optimisation starts; noise is drawn from the seed


class StudioGatys(Gatys):
    """The studio's Gatys: the same method over the packaged VGG16, taking the capped request."""

    request_class = StudioGatysRequest

    def generate(self, request: StudioGatysRequest) -> ImageBatch:
        return super().generate(GatysRequest(**request.model_dump()))
