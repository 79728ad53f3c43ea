"""What the style methods share: images in and out, the perceptual losses, colour preservation.

Losses (Gatys et al. 2015, https://arxiv.org/abs/1508.06576; Johnson et al. 2016, https://arxiv.org/abs/1603.08155):

    content(x)  = |F_l(x) - F_l(c)|^2 / |F_l(c)|^2                    at the content layer l (relu4_2 / relu3_3)
    style(x)    = sum_l w_l |G_l(x) - sum_k b_k G_l(s_k)|^2 / |G_l(s)|^2   over the style layers, G = F F^T / (H W)
    tv(x)       = mean |x[i+1, j] - x[i, j]| + mean |x[i, j+1] - x[i, j]|  (total variation, on [-1, 1] pixels)

Each term is relative to its target's size, so the same weights work for both VGG conventions (Caffe
activations are ~50x torchvision's) and at every image size; b_k blends several style images (interpolation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from aigc.errors import AigcError

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")  # Gatys et al.'s choice
CONTENT_LAYER = "relu4_2"


# ------------------------------------------------------------------------------------ images in and out


def read_rgb(path: str, *, field: str) -> tuple[Tensor, list[str], str]:
    """An image file as float RGB [1, 3, H, W] in [-1, 1], the conversions made (in words), its sha256."""
    from aigc.data.image_files import read_image

    picture = read_image(path, field=field)
    # contiguous: a permuted view would reach optimisers as a strided tensor (L-BFGS cannot flatten its gradient)
    pixels = torch.from_numpy(picture.pixels).permute(2, 0, 1)[None].float().contiguous() / 127.5 - 1
    return pixels, [f"{field}: {note}" for note in picture.notes], picture.sha256


def resize_long_side(images: Tensor, size: int) -> Tensor:
    """Resize [B, C, H, W] so the longer side is `size` pixels, keeping the aspect (bilinear, antialiased)."""
    height, width = images.shape[2:]
    scale = size / max(height, width)
    target = (max(1, round(height * scale)), max(1, round(width * scale)))
    if target == (height, width):
        return images
    return F.interpolate(images, size=target, mode="bilinear", antialias=True, align_corners=False)


def check_style_size(style: Tensor, receptive_field: int, layer: str, *, field: str = "style") -> None:
    """A style image smaller than what the deepest style layer sees has no texture there to copy."""
    shortest = min(style.shape[2:])
    if shortest < receptive_field:
        raise AigcError(
            f"the style image is {style.shape[3]}x{style.shape[2]} pixels; the style layer {layer} sees "
            f"{receptive_field}x{receptive_field} patches, so it needs at least {receptive_field} on the shorter side",
            field=field, fix=f"give a larger style image (>= {receptive_field} px), or shallower style layers",
        )


# ------------------------------------------------------------------------------------------ the losses


def gram(features: Tensor) -> Tensor:
    """[B, C, H, W] -> [B, C, C]: channel correlations, averaged over positions (so any size compares)."""
    batch, channels, height, width = features.shape
    flat = features.reshape(batch, channels, height * width)
    return flat @ flat.transpose(1, 2) / (height * width)


def relative_error(value: Tensor, target: Tensor) -> Tensor:
    """|value - target|^2 / |target|^2 per sample [B]; target broadcasts over the batch."""
    target = target.expand_as(value)
    return (value - target).square().flatten(1).sum(1) / target.square().flatten(1).sum(1).clamp(min=1e-12)


def total_variation(images: Tensor) -> Tensor:
    """Mean absolute difference of neighbouring pixels, per sample [B] (smooths high-frequency noise)."""
    down = (images[:, :, 1:, :] - images[:, :, :-1, :]).abs().flatten(1).mean(1)
    right = (images[:, :, :, 1:] - images[:, :, :, :-1]).abs().flatten(1).mean(1)
    return down + right


@dataclass
class StyleTargets:
    """What an output is compared with: the content's features and the (blended) style Gram matrices."""

    content: Tensor | None  # [B or 1, C, H, W] at the content layer
    grams: dict[str, Tensor]  # style layer -> [1, C, C]


class PerceptualLoss:
    """Content + style + TV through a (frozen) VGG; `terms` gives each weighted term, per sample."""

    def __init__(self, vgg, *, content_layer: str = CONTENT_LAYER, style_layers: Sequence[str] = STYLE_LAYERS,
                 content_weight: float = 1.0, style_weight: float = 1.0, tv_weight: float = 0.0):
        self.vgg = vgg
        self.content_layer, self.style_layers = content_layer, tuple(style_layers)
        vgg.check_layers((content_layer, *self.style_layers))  # a wrong name fails here, listing the layers
        self.content_weight, self.style_weight, self.tv_weight = content_weight, style_weight, tv_weight

    def deepest_style_layer(self) -> tuple[str, int]:
        """The style layer with the largest receptive field, and that field in pixels."""
        layer = max(self.style_layers, key=lambda name: self.vgg.receptive_field[name])
        return layer, self.vgg.receptive_field[layer]

    def features(self, images: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
        """VGG layers of RGB images in [-1, 1]."""
        return self.vgg(self.vgg.from_float(images), layers=tuple(layers))

    def style_grams(self, styles: Sequence[Tensor], blend: Sequence[float]) -> dict[str, Tensor]:
        """The blended Gram matrices of several style images (each [1, 3, H, W], any size): interpolation
        between styles in Gram space (Gatys et al.; Johnson et al. blend the same way)."""
        grams: dict[str, Tensor] = {}
        for style, weight in zip(styles, blend):
            for name, value in self.features(style, self.style_layers).items():
                grams[name] = grams.get(name, 0) + weight * gram(value)
        return grams

    def targets(self, content: Tensor | None, styles: Sequence[Tensor], blend: Sequence[float]) -> StyleTargets:
        with torch.no_grad():
            content_features = None if content is None else self.features(content, (self.content_layer,))[self.content_layer]
            return StyleTargets(content_features, self.style_grams(styles, blend))

    def terms(self, images: Tensor, targets: StyleTargets) -> dict[str, Tensor]:
        """Weighted loss terms, each [B]: content, style, tv (and their sum, total)."""
        wanted = (*self.style_layers, *((self.content_layer,) if targets.content is not None else ()))
        features = self.features(images, wanted)
        style = sum(relative_error(gram(features[name]), targets.grams[name]) for name in self.style_layers) / len(self.style_layers)
        terms = {"style": self.style_weight * style}
        if targets.content is not None:
            terms["content"] = self.content_weight * relative_error(features[self.content_layer], targets.content)
        if self.tv_weight:
            terms["tv"] = self.tv_weight * total_variation(images)
        terms["total"] = sum(terms.values())
        return terms


# ----------------------------------------------------------------------------------- colour preservation

# ITU-R BT.601 (JPEG's YCbCr), on RGB in [-1, 1]: Y carries the luminance, Cb and Cr the colour.
_TO_YCBCR = torch.tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])


def preserve_colour(stylised: Tensor, content: Tensor) -> Tensor:
    """The stylised image's luminance with the content's colour (Gatys et al. 2016, "Preserving color in
    neural artistic style transfer", https://arxiv.org/abs/1606.05897, luminance-only transfer, applied after
    stylisation, which the paper shows is close and works for every method here). Both [B, 3, H, W], [-1, 1]."""
    if content.shape[2:] != stylised.shape[2:]:
        content = F.interpolate(content, size=stylised.shape[2:], mode="bilinear", antialias=True, align_corners=False)
    to_ycbcr = _TO_YCBCR.to(stylised)
    luminance = torch.einsum("ij,bjhw->bihw", to_ycbcr, stylised)[:, :1]
    colour = torch.einsum("ij,bjhw->bihw", to_ycbcr, content.expand_as(stylised))[:, 1:]
    return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(to_ycbcr), torch.cat([luminance, colour], 1)).clamp(-1, 1)


def blend_with_content(stylised: Tensor, content: Tensor, alpha: float) -> Tensor:
    """alpha * stylised + (1 - alpha) * content, in pixels (for methods without a feature-space alpha)."""
    if alpha >= 1.0:
        return stylised
    if content.shape[2:] != stylised.shape[2:]:
        content = F.interpolate(content, size=stylised.shape[2:], mode="bilinear", antialias=True, align_corners=False)
    return alpha * stylised + (1 - alpha) * content
