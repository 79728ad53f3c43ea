"""Fast style transfer: a feed-forward network per style (Johnson et al. 2016, https://arxiv.org/abs/1603.08155),
with instance normalisation (Ulyanov et al. 2016, https://arxiv.org/abs/1607.08022) and upsample + conv
instead of transposed convolutions (Odena et al. 2016, https://distill.pub/2016/deconv-checkerboard/).

    transformer  9x9 conv -> two stride-2 3x3 convs -> residual blocks -> two (2x nearest upsample, 3x3 conv)
                 -> 9x9 conv -> tanh; InstanceNorm + ReLU after every conv but the last; reflection padding
    loss         content_weight * |phi_j(y) - phi_j(c)|^2 / |phi_j(c)|^2            (relu3_3, the paper's)
               + style_weight * mean_l |G_l(y) - G_l(s)|^2 / |G_l(s)|^2             (relu1_2 .. relu4_3)
               + tv_weight * tv(y)                                                   (perceptual.py)

Trained through the one loop on `style-photos` content crops, one run per style: `model.style_path` names
the style image (or `model.style_pattern` picks a generated one). The style's Gram matrices are computed
once, at the first step, and kept as buffers, so a trained network needs neither the style image nor the
VGG to stylise: it is a plain convolutional network (ONNX-exportable).
"""

from __future__ import annotations

import warnings
from typing import Iterator, Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from aigc.backbones.vgg import frozen_vgg, layer_shapes
from aigc.config import BaseConfig, OptimConfig, build_optimizer
from aigc.errors import AigcError, AigcWarning
from aigc.generation.outputs import ImageBatch
from aigc.generation.requests import FastStyleRequest
from aigc.models.sampling import eval_mode, image_batch
from aigc.models.style.perceptual import PerceptualLoss, StyleTargets, blend_with_content, preserve_colour, read_rgb, resize_long_side
from aigc.registry import register_model

JOHNSON_STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")


class FastStyleConfig(BaseConfig):
    image_size: int = Field(256, ge=16)  # training crops, pixels (the network stylises any size)
    width: int = Field(32, ge=4)  # channels of the first conv; x2 after each downsampling (32, 64, 128)
    residual_blocks: int = Field(5, ge=0, le=16)  # at the lowest resolution
    style_path: str | None = None  # the style image this network learns; None: generated pattern `style_pattern`
    style_pattern: int = Field(0, ge=0, lt=12)  # which generated pattern (aigc.data.style_sets) when no style_path
    style_size: int = Field(256, ge=32, le=1024)  # long side the style image is resized to for its Gram matrices
    content_layer: str = "relu3_3"  # Johnson et al.: relu3_3 for content
    style_layers: list[str] = list(JOHNSON_STYLE_LAYERS)
    content_weight: float = Field(1.0, ge=0)
    style_weight: float = Field(10.0, ge=0)
    tv_weight: float = Field(1e-3, ge=0)  # total variation on [-1, 1] pixels
    sample_precision: Literal["fp32", "bf16"] = "fp32"  # stylising: bf16 autocast + channels-last (1.9-2.1x on AMX CPUs; benchmarks/style_speed.py)


def conv(in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> nn.Conv2d:
    """A conv with reflection padding (no dark frame at the borders)."""
    return nn.Conv2d(in_channels, out_channels, kernel, stride, padding=kernel // 2, padding_mode="reflect")


def conv_norm_relu(in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(conv(in_channels, out_channels, kernel, stride), nn.InstanceNorm2d(out_channels, affine=True), nn.ReLU())


class ResidualBlock(nn.Module):
    """x + IN(conv(ReLU(IN(conv(x))))) (Johnson et al., supplementary, with InstanceNorm)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(conv_norm_relu(channels, channels, 3), conv(channels, channels, 3), nn.InstanceNorm2d(channels, affine=True))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class Transformer(nn.Module):
    """The image transformation network: [-1, 1] [B, C, H, W] -> [-1, 1] [B, C, H, W], H and W multiples of 4
    (C = 3 here; CycleGAN's generators are this network too, Zhu et al. 2017 §4, with C = 1 for digits)."""

    def __init__(self, width: int, residual_blocks: int, channels: int = 3):
        super().__init__()
        self.body = nn.Sequential(
            conv_norm_relu(channels, width, 9), conv_norm_relu(width, 2 * width, 3, 2), conv_norm_relu(2 * width, 4 * width, 3, 2),
            *[ResidualBlock(4 * width) for _ in range(residual_blocks)],
            nn.Upsample(scale_factor=2, mode="nearest"), conv_norm_relu(4 * width, 2 * width, 3),
            nn.Upsample(scale_factor=2, mode="nearest"), conv_norm_relu(2 * width, width, 3),
            conv(width, channels, 9), nn.Tanh(),
        )

    def forward(self, images: Tensor) -> Tensor:
        return self.body(images)


def gram_width(shape: str) -> int:
    """Channels of a VGG layer from its shape in words: "[B, 128, H/2, W/2]" -> 128."""
    return int(shape.split(",")[1])


class FastStyle(nn.Module):
    """One style's transformer network; the loop steps one optimizer ("transformer")."""

    request_class = FastStyleRequest  # no style images: the style is built in (the studio shows no style upload)
    family_name = "fast"
    training_only = ("style_gram_",)  # the style's Gram matrices are the loss's targets: a zoo export leaves them out

    def __init__(self, config: FastStyleConfig):
        super().__init__()
        shapes = layer_shapes("vgg16")
        unknown = [name for name in (config.content_layer, *config.style_layers) if name not in shapes]
        if unknown:
            raise AigcError(f"VGG16 has no layer {unknown[0]!r}", field="model.style_layers", fix=f"use some of: {', '.join(shapes)}")
        self.config = config
        self.transformer = Transformer(config.width, config.residual_blocks)
        # The style's Gram matrices: filled at the first training step, saved with the weights.
        for index, name in enumerate(config.style_layers):
            width = gram_width(shapes[name])
            self.register_buffer(f"style_gram_{index}", torch.zeros(1, width, width))
        self.register_buffer("style_ready", torch.zeros((), dtype=torch.bool))

    def configure_optimizers(self, optim: OptimConfig) -> dict[str, torch.optim.Optimizer]:
        return {"transformer": build_optimizer(self.transformer.parameters(), optim)}

    def perceptual(self) -> PerceptualLoss:
        config = self.config
        return PerceptualLoss(frozen_vgg(self.style_ready.device), content_layer=config.content_layer, style_layers=config.style_layers,
                              content_weight=config.content_weight, style_weight=config.style_weight, tv_weight=config.tv_weight)

    def style_image(self) -> Tensor:
        """The style image [1, 3, H, W] in [-1, 1]: the user's file, or a generated pattern."""
        if self.config.style_path is not None:
            return read_rgb(self.config.style_path, field="model.style_path")[0]
        from aigc.data.style_sets import generated_styles

        pattern = generated_styles(self.config.style_size)[self.config.style_pattern]
        return torch.from_numpy(pattern.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1

    @torch.no_grad()
    def _learn_style(self, perceptual: PerceptualLoss) -> None:
        style = resize_long_side(self.style_image(), self.config.style_size).to(self.style_ready.device)
        for index, value in enumerate(perceptual.style_grams([style], [1.0]).values()):
            getattr(self, f"style_gram_{index}").copy_(value)
        self.style_ready.fill_(True)

    def losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        perceptual = self.perceptual()
        grams = {name: getattr(self, f"style_gram_{index}") for index, name in enumerate(self.config.style_layers)}
        # A zoo export leaves the Gram matrices out (training_only) but keeps style_ready: fine-tuning from it
        # (--init-from fast-rings) must learn them again, or it would train towards all-zero targets.
        if not bool(self.style_ready) or not all(bool(gram.any()) for gram in grams.values()):
            self._learn_style(perceptual)
        content = batch["images"]
        with torch.no_grad():
            target = perceptual.features(content, (self.config.content_layer,))[self.config.content_layer]
        terms = perceptual.terms(self.transformer(content), StyleTargets(target, grams))
        return {name: value.mean() for name, value in terms.items()}

    def training_step(self, batch: dict[str, Tensor]) -> Iterator[tuple[str, Tensor, dict[str, Tensor]]]:
        terms = self.losses(batch)
        yield "transformer", terms["total"], {name: value.detach() for name, value in terms.items() if name != "total"}

    @torch.no_grad()
    def validation_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        terms = self.losses(batch)
        return {"loss": terms.pop("total"), **terms}

    @torch.no_grad()
    def stylise(self, content: Tensor) -> Tensor:
        """[B, 3, H, W] in [-1, 1] -> stylised, same size (H, W multiples of 4)."""
        bf16 = self.config.sample_precision == "bf16"
        if bf16:  # oneDNN's bf16 convolutions (AMX) want NHWC: bf16 alone gains little (benchmarks/style_speed.py)
            with torch.inference_mode(False):  # weights made here must stay trainable tensors
                self.transformer.to(memory_format=torch.channels_last)
            content = content.contiguous(memory_format=torch.channels_last)
        with eval_mode(self), torch.autocast(content.device.type, dtype=torch.bfloat16, enabled=bf16):
            return self.transformer(content).float().contiguous()

    def generate(self, request: FastStyleRequest) -> ImageBatch:
        if getattr(request, "style", None):  # a StyleRequest (AdaIN's, Gatys') handed over as it is
            raise AigcError("a fast network has its style built in (it learned one style image)", field="style",
                            fix="leave --style out, or use --method adain / gatys for another style")
        if not bool(self.style_ready):
            raise AigcError("this fast network was never trained, so it has no style yet", field="model", fix="train it: aigc train fast-tiny --out runs/fast")
        content, notes, content_sha = read_rgb(request.content, field="content")
        for note in notes:
            warnings.warn(AigcWarning(note), stacklevel=2)
        content = resize_long_side(content, request.size)
        height, width = (max(4, side // 4 * 4) for side in content.shape[2:])  # two downsamplings, two upsamplings
        content = torch.nn.functional.interpolate(content, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
        content = content.to(self.style_ready.device)
        output = blend_with_content(self.stylise(content), content, request.alpha)
        if request.preserve_color:
            output = preserve_colour(output, content)
        seeds = [request.seed + index for index in range(request.count)]
        style = self.config.style_path or f"generated pattern {self.config.style_pattern}"
        return image_batch(self, output.expand(request.count, -1, -1, -1), request, seeds, None, None, method="fast",
                           content_sha256=content_sha[:16], style=style, alpha=request.alpha, size=request.size,
                           preserve_color=request.preserve_color, conversions=notes)


register_model("fast", modality="style", config=FastStyleConfig,
               description="Fast style transfer: one feed-forward network per style (Johnson et al. 2016, InstanceNorm, upsample+conv)")(FastStyle)
