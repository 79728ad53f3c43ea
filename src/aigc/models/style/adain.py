"""AdaIN: arbitrary style transfer in one pass (Huang & Belongie 2017, https://arxiv.org/abs/1703.06868).

    t = AdaIN(f(c), f(s)) = sigma(f(s)) * (f(c) - mu(f(c))) / sigma(f(c)) + mu(f(s))        (eq. 8)
    output = g((1 - alpha) f(c) + alpha t)                                                    (eq. 14, the trade-off)

f is the frozen VGG up to `encoder_layer` (relu4_1 in the paper), mu and sigma are per-channel means and
standard deviations over positions, g is the decoder trained here. Several styles blend their targets:
t = sum_k w_k AdaIN(f(c), f(s_k)) (§7.2, style interpolation). Colour preservation keeps the content's
colours (luminance-only, perceptual.py).

Training (the one loop; data: `style-photos`, content crops each paired with a style crop):

    loss = content_weight * |f(g(t)) - t|^2 / |t|^2
         + style_weight * mean_l (|mu(phi_l(g(t))) - mu(phi_l(s))|^2 / |mu(phi_l(s))|^2 + same for sigma)   (eq. 11, relative)

The decoder mirrors the encoder: nearest-neighbour upsampling + 3x3 convolutions (no transposed
convolutions: no checkerboard), reflection padding (no dark borders), no normalisation layers (§6.1).
Only the decoder is saved: the VGG stays outside the state dict (aigc.backbones.vgg.frozen_vgg).
"""

from __future__ import annotations

import warnings
from typing import Iterator, Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from aigc.backbones.vgg import BLOCKS, WIDTHS, frozen_vgg, receptive_fields
from aigc.config import BaseConfig, OptimConfig, build_optimizer
from aigc.errors import AigcError, AigcWarning
from aigc.generation.outputs import ImageBatch
from aigc.generation.requests import StyleRequest
from aigc.models.sampling import eval_mode, image_batch, module_device
from aigc.models.style.perceptual import check_style_size, preserve_colour, read_rgb, relative_error, resize_long_side
from aigc.registry import register_model

ENCODER_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
EPS = 1e-5  # keeps sigma of a flat feature map from dividing by zero


class AdaINConfig(BaseConfig):
    image_size: int = Field(256, ge=16)  # training crops, pixels (generation takes any size)
    encoder_layer: Literal["relu1_1", "relu2_1", "relu3_1", "relu4_1"] = "relu4_1"  # where AdaIN acts
    decoder_width: float = Field(1.0, gt=0, le=2)  # decoder channels, as a share of the VGG's mirrored widths
    style_layers: list[Literal["relu1_1", "relu2_1", "relu3_1", "relu4_1"]] = list(ENCODER_LAYERS)  # matched by mean/std
    content_weight: float = Field(1.0, ge=0)  # relative error of f(g(t)) against t
    style_weight: float = Field(10.0, ge=0)  # the paper's lambda, on relative errors
    style_path: str | None = None  # style images for training (a file or a folder); None: generated patterns


def mean_std(features: Tensor) -> tuple[Tensor, Tensor]:
    """Per-sample, per-channel mean and standard deviation over positions: [B, C, 1, 1] each."""
    mean = features.mean(dim=(2, 3), keepdim=True)
    std = (features.var(dim=(2, 3), keepdim=True, unbiased=False) + EPS).sqrt()
    return mean, std


def adain(content: Tensor, style: Tensor) -> Tensor:
    """Eq. 8: the content features with the style features' channel statistics."""
    content_mean, content_std = mean_std(content)
    style_mean, style_std = mean_std(style)
    return style_std * (content - content_mean) / content_std + style_mean


class Decoder(nn.Module):
    """The encoder mirrored: per VGG block from the deepest, its 3x3 convs (reflection padded) then 2x
    nearest upsampling; the last conv outputs RGB in [-1, 1] (unbounded: clipped when images are made)."""

    def __init__(self, encoder_layer: str, width: float):
        super().__init__()
        depth = int(encoder_layer[4])  # relu<depth>_1
        widths = [max(4, round(w * width)) for w in WIDTHS[:depth]]
        layers: list[nn.Module] = []
        channels = WIDTHS[depth - 1]  # the encoder's output channels are the VGG's, whatever the width
        for block in reversed(range(depth)):
            convs = 1 if block == depth - 1 else BLOCKS["vgg16"][block]  # the encoder has one conv of the deepest block
            for index in range(convs):
                last_of_block = index == convs - 1
                out = widths[block - 1] if last_of_block and block > 0 else widths[block]
                out = 3 if last_of_block and block == 0 else out
                layers.append(nn.Conv2d(channels, out, 3, padding=1, padding_mode="reflect"))
                if not (last_of_block and block == 0):
                    layers.append(nn.ReLU())
                channels = out
            if block > 0:
                layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
        self.body = nn.Sequential(*layers)

    def forward(self, features: Tensor) -> Tensor:
        return self.body(features)


class AdaIN(nn.Module):
    """The decoder and the losses; the loop steps one optimizer ("decoder")."""

    request_class = StyleRequest
    family_name = "adain"

    def __init__(self, config: AdaINConfig):
        super().__init__()
        deepest = max(int(layer[4]) for layer in config.style_layers)
        if deepest > int(config.encoder_layer[4]):
            raise AigcError(f"style layer relu{deepest}_1 is deeper than the encoder layer {config.encoder_layer}",
                            field="model.style_layers", fix=f"use layers up to {config.encoder_layer}")
        self.config = config
        self.decoder = Decoder(config.encoder_layer, config.decoder_width)

    def vgg(self):
        return frozen_vgg(module_device(self))

    def configure_optimizers(self, optim: OptimConfig) -> dict[str, torch.optim.Optimizer]:
        return {"decoder": build_optimizer(self.decoder.parameters(), optim)}

    def features(self, images: Tensor, layers) -> dict[str, Tensor]:
        vgg = self.vgg()
        return vgg(vgg.from_float(images), layers=tuple(layers))

    def losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        layers = tuple(dict.fromkeys((*self.config.style_layers, self.config.encoder_layer)))
        with torch.no_grad():  # the targets: no gradient needed through the frozen encoder here
            content = self.features(batch["images"], (self.config.encoder_layer,))[self.config.encoder_layer]
            style = self.features(batch["styles"], layers)
            target = adain(content, style[self.config.encoder_layer])
        output = self.decoder(target)
        made = self.features(output, layers)
        content_loss = relative_error(made[self.config.encoder_layer], target).mean()
        style_loss = 0.0
        for name in self.config.style_layers:
            (made_mean, made_std), (style_mean, style_std) = mean_std(made[name]), mean_std(style[name])
            style_loss = style_loss + relative_error(made_mean, style_mean).mean() + relative_error(made_std, style_std).mean()
        style_loss = style_loss / len(self.config.style_layers)
        return {"content": content_loss, "style": style_loss,
                "loss": self.config.content_weight * content_loss + self.config.style_weight * style_loss}

    def training_step(self, batch: dict[str, Tensor]) -> Iterator[tuple[str, Tensor, dict[str, Tensor]]]:
        losses = self.losses(batch)
        yield "decoder", losses["loss"], {"content": losses["content"].detach(), "style": losses["style"].detach()}

    @torch.no_grad()
    def validation_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return self.losses(batch)

    @torch.no_grad()
    def stylise(self, content: Tensor, styles: list[Tensor], blend: list[float], alpha: float) -> Tensor:
        """Content [1, 3, H, W] and style images (any sizes) in [-1, 1] -> the stylised image [1, 3, H', W']."""
        layer = self.config.encoder_layer
        content_features = self.features(content, (layer,))[layer]
        target = sum(weight * adain(content_features, self.features(style, (layer,))[layer]) for style, weight in zip(styles, blend))
        target = alpha * target + (1 - alpha) * content_features  # eq. 14
        with eval_mode(self):
            return self.decoder(target).clamp(-1, 1)

    def generate(self, request: StyleRequest) -> ImageBatch:
        if not request.style:
            raise AigcError("AdaIN needs a style image", field="style", fix="add --style PATH (repeat it to blend several)")
        device = module_device(self)
        content, notes, content_sha = read_rgb(request.content, field="content")
        # The decoder upsamples by 2 per block: sides that are multiples of 2**(depth-1) come back the same size.
        multiple = 2 ** (int(self.config.encoder_layer[4]) - 1)
        content = resize_long_side(content, request.size)
        height, width = (max(multiple, side // multiple * multiple) for side in content.shape[2:])
        content = torch.nn.functional.interpolate(content, size=(height, width), mode="bilinear", antialias=True, align_corners=False).to(device)
        field = receptive_fields("vgg16")[self.config.encoder_layer]
        styles, shas = [], []
        for path in request.style:
            style, style_notes, digest = read_rgb(path, field="style")
            check_style_size(style, field, self.config.encoder_layer)
            styles.append(resize_long_side(style, min(request.size, max(style.shape[2:]))).to(device))
            notes, shas = notes + style_notes, shas + [digest]
        for note in notes:
            warnings.warn(AigcWarning(note), stacklevel=2)
        output = self.stylise(content, styles, request.blend(), request.alpha)
        if request.preserve_color:
            output = preserve_colour(output, content)
        seeds = [request.seed + index for index in range(request.count)]
        return image_batch(
            self, output.expand(request.count, -1, -1, -1), request, seeds, None, None, method="adain",
            content_sha256=content_sha[:16], style_sha256=[digest[:16] for digest in shas], style_blend=request.blend(),
            alpha=request.alpha, size=request.size, preserve_color=request.preserve_color, conversions=notes,
        )


register_model("adain", modality="style", config=AdaINConfig,
               description="AdaIN arbitrary style transfer: VGG encoder, adaptive instance norm, trained decoder (Huang & Belongie 2017)")(AdaIN)
