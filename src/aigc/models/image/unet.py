"""A small U-Net for diffusion (Ronneberger et al. 2015; as used by Ho et al. 2020, Appendix B):
residual blocks that take a time embedding, self-attention at low resolutions, skip connections from
each down level to the matching up level. The network only predicts; sampling lives in aigc.schedulers.

    x_t [B, C, H, W], t [B], condition [B, E] or None
      -> conv in -> (res blocks [+ attention], downsample) per level -> middle (res, attention, res)
      -> (res blocks over [h, skip] [+ attention], upsample) per level -> norm, SiLU, conv out -> [B, C, H, W]

The condition vector (a class or prompt embedding, `layers.ConditionEmbedding`) is added to the time
embedding, so every residual block sees it (the "pooled embedding" conditioning of Imagen / ADM).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aigc.models.layers import sinusoidal_embedding


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm keeps samples independent (no BatchNorm), so an image never depends on its batch."""
    return nn.GroupNorm(min(8, channels), channels)


class ResidualBlock(nn.Module):
    """norm, SiLU, conv; + time embedding (scale and shift, "AdaGN", Dhariwal & Nichol 2021 §3); norm, SiLU,
    dropout, conv; + a 1x1 skip when the channel count changes."""

    def __init__(self, in_channels: int, out_channels: int, embedding_dim: int, dropout: float):
        super().__init__()
        self.norm_in = group_norm(in_channels)
        self.conv_in = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.embedding = nn.Linear(embedding_dim, 2 * out_channels)
        self.norm_out = group_norm(out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv_out = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)  # each block starts as the identity: stable early training
        nn.init.zeros_(self.conv_out.bias)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: Tensor, embedding: Tensor) -> Tensor:
        h = self.conv_in(F.silu(self.norm_in(x)))  # [B, out, H, W]
        scale, shift = self.embedding(F.silu(embedding))[:, :, None, None].chunk(2, dim=1)  # [B, out, 1, 1] each
        h = self.norm_out(h) * (1 + scale) + shift
        h = self.conv_out(self.dropout(F.silu(h)))
        return self.skip(x) + h


class Attention(nn.Module):
    """Multi-head self-attention over the H*W positions of a feature map, with a residual connection."""

    def __init__(self, channels: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm = group_norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor) -> Tensor:
        batch, channels, height, width = x.shape
        qkv = self.qkv(self.norm(x)).reshape(batch, 3, self.heads, channels // self.heads, height * width)
        q, k, v = (part.transpose(-1, -2) for part in qkv.unbind(dim=1))  # [B, heads, HW, C/heads] each
        h = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(d)) v
        h = h.transpose(-1, -2).reshape(batch, channels, height, width)
        return x + self.out(h)


class Level(nn.Module):
    """Residual blocks at one resolution, each followed by attention when this level has it."""

    def __init__(self, in_channels: int, out_channels: int, blocks: int, embedding_dim: int, attention: bool, heads: int, dropout: float, skip_channels: list[int] | None = None):
        super().__init__()
        self.blocks = nn.ModuleList()
        self.attentions = nn.ModuleList()
        channels = in_channels
        for index in range(blocks):
            extra = skip_channels[index] if skip_channels else 0  # up path: concatenated skip features
            self.blocks.append(ResidualBlock(channels + extra, out_channels, embedding_dim, dropout))
            self.attentions.append(Attention(out_channels, heads) if attention else nn.Identity())
            channels = out_channels


class UNet(nn.Module):
    def __init__(
        self,
        *,
        channels: int,
        image_size: int,
        base_channels: int = 32,
        channel_multipliers: tuple[int, ...] = (1, 2, 2),
        blocks_per_level: int = 1,
        attention_resolutions: tuple[int, ...] = (7,),
        heads: int = 4,
        dropout: float = 0.0,
        condition_dim: int | None = None,
    ):
        super().__init__()
        self.base_channels = base_channels
        embedding_dim = 4 * base_channels
        self.time_mlp = nn.Sequential(nn.Linear(base_channels, embedding_dim), nn.SiLU(), nn.Linear(embedding_dim, embedding_dim))
        self.condition_dim = condition_dim
        self.conv_in = nn.Conv2d(channels, base_channels, 3, padding=1)

        # Down path: record the channels of every feature map kept for a skip connection.
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        skips = [base_channels]
        current, resolution = base_channels, image_size
        for level, multiplier in enumerate(channel_multipliers):
            width = base_channels * multiplier
            self.down.append(Level(current, width, blocks_per_level, embedding_dim, resolution in attention_resolutions, heads, dropout))
            current = width
            skips += [width] * blocks_per_level
            if level < len(channel_multipliers) - 1:
                self.downsample.append(nn.Conv2d(current, current, 3, stride=2, padding=1))  # H -> ceil(H/2)
                skips.append(current)
                resolution = (resolution + 1) // 2
        self.middle_in = ResidualBlock(current, current, embedding_dim, dropout)
        self.middle_attention = Attention(current, heads)
        self.middle_out = ResidualBlock(current, current, embedding_dim, dropout)

        # Up path: one more block per level than going down, to consume the downsample's skip too.
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for level, multiplier in reversed(list(enumerate(channel_multipliers))):
            width = base_channels * multiplier
            resolution = _size_at(image_size, level)
            taken = [skips.pop() for _ in range(blocks_per_level + 1)]
            self.up.append(Level(current, width, blocks_per_level + 1, embedding_dim, resolution in attention_resolutions, heads, dropout, taken))
            current = width
            if level > 0:
                self.upsample.append(nn.Conv2d(current, current, 3, padding=1))
        self.norm_out = group_norm(current)
        self.conv_out = nn.Conv2d(current, channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x: Tensor, timesteps: Tensor, condition: Tensor | None = None) -> Tensor:
        embedding = self.time_mlp(sinusoidal_embedding(timesteps, self.base_channels))  # [B, 4 * base]
        if condition is not None:
            embedding = embedding + condition  # the class / prompt vector, already [B, 4 * base]
        h = self.conv_in(x)
        skips = [h]
        for index, level in enumerate(self.down):
            for block, attention in zip(level.blocks, level.attentions):
                h = attention(block(h, embedding))
                skips.append(h)
            if index < len(self.downsample):
                h = self.downsample[index](h)
                skips.append(h)
        h = self.middle_out(self.middle_attention(self.middle_in(h, embedding)), embedding)
        for index, level in enumerate(self.up):
            for block, attention in zip(level.blocks, level.attentions):
                h = attention(block(torch.cat([h, skips.pop()], dim=1), embedding))
            if index < len(self.upsample):
                size = skips[-1].shape[-2:]  # 7 -> 14 -> 28: match the skip exactly, odd sizes included
                h = self.upsample[index](F.interpolate(h, size=size, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))


def _size_at(image_size: int, level: int) -> int:
    """Feature-map side at down level `level` (each downsample is stride 2 with padding 1: ceil(H / 2))."""
    for _ in range(level):
        image_size = (image_size + 1) // 2
    return image_size
