"""CycleGAN: unpaired image-to-image translation (Zhu et al. 2017, https://arxiv.org/abs/1703.10593), the GAN
route to style transfer: two generators G: A -> B and F: B -> A, two discriminators D_A and D_B.

    adversarial   least squares (§4, Mao et al. 2017): D minimises (D(real) - 1)^2 + D(fake)^2, G minimises (D(G(a)) - 1)^2
    cycle         |F(G(a)) - a|_1 + |G(F(b)) - b|_1, weighted by cycle_weight (lambda = 10, eq. 2)
    identity      |G(b) - b|_1 + |F(a) - a|_1, weighted by identity_weight (0.5 lambda, §5.2: keeps colours/ink)

Generators are Johnson et al.'s transformer network (fast.py's Transformer, as in the paper), discriminators
PatchGANs (one logit per overlapping patch, §4). Each step the generators are updated, then the discriminators
on the just-made fakes (the loop steps each optimizer as its loss arrives). The paper's pool of 50 past
fakes is left out: with these small domains the discriminators keep up without it.

Data: `digits-unpaired` (MNIST handwriting <-> digits printed from the installed fonts). `generate` takes a
TranslateRequest (an image file, a direction) and returns an ImageBatch; `translate` works on tensors.
"""

from __future__ import annotations

import itertools
import warnings
from typing import Iterator, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from aigc.config import BaseConfig, OptimConfig, build_optimizer
from aigc.errors import AigcWarning, ConfigError
from aigc.generation.outputs import ImageBatch
from aigc.generation.requests import TranslateRequest
from aigc.models.sampling import eval_mode, image_batch, module_device
from aigc.models.style.fast import Transformer
from aigc.models.style.perceptual import read_rgb
from aigc.registry import register_model


class CycleGANConfig(BaseConfig):
    image_size: int = Field(28, ge=8)  # height = width, a multiple of 4
    channels: Literal[1, 3] = 1  # 1 grey (digits), 3 RGB
    width: int = Field(32, ge=4)  # generator: first conv's channels; discriminator: the same
    residual_blocks: int = Field(3, ge=0, le=9)
    cycle_weight: float = Field(10.0, ge=0)  # lambda of eq. 3
    identity_weight: float = Field(5.0, ge=0)  # 0.5 lambda (§5.2); 0 turns the identity loss off


def patch_discriminator(channels: int, width: int) -> nn.Sequential:
    """PatchGAN: 4x4 convs, stride 2 twice then 1; a logit per patch (a 28x28 image gives 6x6 patches of 22 px)."""
    return nn.Sequential(
        nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(width, 2 * width, 4, 2, 1), nn.InstanceNorm2d(2 * width, affine=True), nn.LeakyReLU(0.2),
        nn.Conv2d(2 * width, 1, 4, 1, 1),
    )


def least_squares(logits: Tensor, real: bool) -> Tensor:
    return (logits - (1.0 if real else 0.0)).square().mean()


class CycleGAN(nn.Module):
    request_class = TranslateRequest
    family_name = "cyclegan"
    training_only = ("discriminator_a.", "discriminator_b.")  # a zoo export keeps the two generators only

    def __init__(self, config: CycleGANConfig):
        super().__init__()
        if config.image_size % 4:
            raise ConfigError(f"image_size {config.image_size} is not a multiple of 4", field="model.image_size", fix="use 28, 32, 64, ...")
        self.config = config
        self.a_to_b = Transformer(config.width, config.residual_blocks, config.channels)  # G
        self.b_to_a = Transformer(config.width, config.residual_blocks, config.channels)  # F
        self.discriminator_a = patch_discriminator(config.channels, config.width)
        self.discriminator_b = patch_discriminator(config.channels, config.width)

    def configure_optimizers(self, optim: OptimConfig) -> dict[str, torch.optim.Optimizer]:
        generators = itertools.chain(self.a_to_b.parameters(), self.b_to_a.parameters())
        discriminators = itertools.chain(self.discriminator_a.parameters(), self.discriminator_b.parameters())
        return {"generators": build_optimizer(generators, optim), "discriminators": build_optimizer(discriminators, optim)}

    def generator_losses(self, real_a: Tensor, real_b: Tensor) -> tuple[dict[str, Tensor], Tensor, Tensor]:
        fake_b, fake_a = self.a_to_b(real_a), self.b_to_a(real_b)
        losses = {
            "adversarial": least_squares(self.discriminator_b(fake_b), True) + least_squares(self.discriminator_a(fake_a), True),
            "cycle": F.l1_loss(self.b_to_a(fake_b), real_a) + F.l1_loss(self.a_to_b(fake_a), real_b),  # eq. 2
        }
        if self.config.identity_weight:
            losses["identity"] = F.l1_loss(self.a_to_b(real_b), real_b) + F.l1_loss(self.b_to_a(real_a), real_a)
        return losses, fake_a, fake_b

    def training_step(self, batch: dict[str, Tensor]) -> Iterator[tuple[str, Tensor, dict[str, Tensor]]]:
        real_a, real_b = batch["images"], batch["targets"]
        losses, fake_a, fake_b = self.generator_losses(real_a, real_b)
        total = losses["adversarial"] + self.config.cycle_weight * losses["cycle"] + self.config.identity_weight * losses.get("identity", 0.0)
        yield "generators", total, {name: value.detach() for name, value in losses.items()}
        fake_a, fake_b = fake_a.detach(), fake_b.detach()
        discriminator = 0.5 * (
            least_squares(self.discriminator_a(real_a), True) + least_squares(self.discriminator_a(fake_a), False)
            + least_squares(self.discriminator_b(real_b), True) + least_squares(self.discriminator_b(fake_b), False)
        )
        yield "discriminators", discriminator, {}

    @torch.no_grad()
    def validation_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        with eval_mode(self):
            losses, _, _ = self.generator_losses(batch["images"], batch["targets"])
        return {"loss": losses["cycle"], **losses}

    @torch.no_grad()
    def translate(self, images: Tensor, direction: str = "a_to_b") -> Tensor:
        """[B, C, S, S] in [-1, 1] from one domain to the other."""
        network = self.a_to_b if direction == "a_to_b" else self.b_to_a
        with eval_mode(self):
            return network(images)

    def generate(self, request: TranslateRequest) -> ImageBatch:
        image, notes, digest = read_rgb(request.image, field="image")
        for note in notes:
            warnings.warn(AigcWarning(note), stacklevel=2)
        if self.config.channels == 1:  # ITU-R 601 luma, as Pillow's convert("L")
            image = (image * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        size = self.config.image_size
        image = F.interpolate(image, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        device = module_device(self)
        output = self.translate(image.to(device), request.direction)
        return image_batch(self, output, request, [request.seed], None, None, method="cyclegan", direction=request.direction,
                           image_sha256=digest[:16], conversions=notes)


register_model("cyclegan", modality="translation", config=CycleGANConfig,
               description="CycleGAN unpaired translation: two generators, two PatchGAN critics, cycle and identity losses (Zhu et al. 2017)")(CycleGAN)
