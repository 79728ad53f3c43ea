"""A small image classifier: the feature network behind the MNIST and Fashion-MNIST scores.

FID, KID, IS and precision/recall need a network that maps an image to features (and, for IS, to class
probabilities). Inception-v3 was trained on ImageNet photos and says little about 28x28 digits, so for
MNIST-like data the project trains this CNN with its own loop (`aigc train classifier-mnist`) and ships
the weights inside the package (`aigc/metrics/weights/`, used by `aigc.metrics.features`).

Architecture (no augmentation; BatchNorm and dropout regularise it):

    image [B, C, S, S] in [-1, 1]
      -> len(widths) blocks of (conv 3x3 + BatchNorm + ReLU) x convs_per_block, then 2x2 max-pool
      -> flatten [B, widths[-1] * (S / 2**blocks)**2]
      -> linear -> BatchNorm -> ReLU = the features [B, feature_dim]   (what Fréchet / kernel distances use)
      -> dropout -> linear = class logits [B, num_classes]           (softmax: what the Inception Score uses)

It is a registered family with modality "classifier": it trains in the one loop and saves like any model,
but it has no `generate` (nothing to sample), so the loop's sample grids skip it.
"""

from __future__ import annotations

from typing import Iterator

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn

from aigc.config import BaseConfig, OptimConfig, build_optimizer
from aigc.errors import ConfigError
from aigc.models.adversarial import attack
from aigc.models.sampling import eval_mode
from aigc.registry import register_model

# ---------------------------------------------------------------------------------------------- config


class ClassifierConfig(BaseConfig):
    image_size: int = Field(28, ge=4)  # height = width of input images
    channels: int = Field(1, ge=1, le=3)  # 1 grey, 3 RGB
    num_classes: int | None = Field(None, ge=2)  # filled in from the dataset when left empty
    widths: tuple[int, ...] = (32, 64, 128)  # output channels of each conv block; each block halves the size
    convs_per_block: int = Field(1, ge=1, le=3)  # conv + BatchNorm + ReLU layers before each max-pool
    feature_dim: int = Field(128, ge=2)  # size of the penultimate layer: the features metrics compare
    dropout: float = Field(0.3, ge=0, lt=1)  # on the features, before the class logits (training only)
    label_smoothing: float = Field(0.0, ge=0, lt=1)  # cross-entropy label smoothing
    # Adversarial training (models/adversarial.py): each batch also trains on its FGSM (steps = 1) or PGD
    # examples, made against the network as it is at that step (Goodfellow et al. 2015; Madry et al. 2018).
    adversarial_eps: float = Field(0.0, ge=0, le=0.5)  # L-inf budget in pixel units (share of the range; 0.1 = 25.5/255); 0: off
    adversarial_steps: int = Field(1, ge=1, le=50)  # 1: FGSM; more: PGD with step 2.5 * eps / steps from a random start
    adversarial_weight: float = Field(0.5, ge=0, le=1)  # share of the loss on adversarial examples (0.5: Goodfellow's mix; 1: Madry's)

    @model_validator(mode="after")
    def _fits(self) -> "ClassifierConfig":
        if not self.widths:
            raise ValueError("widths needs at least one conv block, e.g. [32, 64, 128]")
        if self.image_size // 2 ** len(self.widths) < 1:
            raise ValueError(
                f"{len(self.widths)} max-pools shrink image_size={self.image_size} below one pixel; "
                f"use at most {max(self.image_size.bit_length() - 1, 1)} widths"
            )
        return self


# --------------------------------------------------------------------------------------------- model


class Classifier(nn.Module):
    """Conv blocks -> features -> logits. `features(x)` and `logits_from_features` split the forward pass."""

    family_name = "classifier"

    def __init__(self, config: ClassifierConfig):
        super().__init__()
        if config.num_classes is None:
            raise ConfigError(
                "a classifier needs the number of classes",
                field="model.num_classes",
                fix="use a labelled dataset (it fills this in), or set model.num_classes",
            )
        self.config = config
        layers: list[nn.Module] = []
        channels = config.channels
        for width in config.widths:
            for _ in range(config.convs_per_block):
                # No conv bias: BatchNorm's shift replaces it.
                layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
                channels = width
            layers.append(nn.MaxPool2d(2))  # [B, width, s, s] -> [B, width, s // 2, s // 2]
        self.body = nn.Sequential(*layers)
        side = config.image_size // 2 ** len(config.widths)
        self.embed = nn.Sequential(
            nn.Linear(channels * side * side, config.feature_dim, bias=False),
            nn.BatchNorm1d(config.feature_dim),
            nn.ReLU(inplace=True),
        )
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.feature_dim, config.num_classes)

    def features(self, images: Tensor) -> Tensor:
        """images [B, C, S, S] in [-1, 1] -> features [B, feature_dim] (non-negative: after ReLU)."""
        return self.embed(self.body(images).flatten(1))

    def logits_from_features(self, features: Tensor) -> Tensor:
        return self.head(self.dropout(features))  # [B, num_classes]

    def forward(self, images: Tensor) -> Tensor:
        return self.logits_from_features(self.features(images))

    # -- the loop's contract ------------------------------------------------------------------------

    def configure_optimizers(self, optim: OptimConfig) -> dict[str, torch.optim.Optimizer]:
        return {"classifier": build_optimizer(self.parameters(), optim)}

    def training_step(self, batch: dict[str, Tensor]) -> Iterator[tuple[str, Tensor, dict[str, Tensor]]]:
        images, labels, config = batch["images"], batch["labels"], self.config
        logits = self(images)  # [B, K]
        loss = F.cross_entropy(logits, labels, label_smoothing=config.label_smoothing)
        logs = {"accuracy": (logits.argmax(dim=1) == labels).float().mean().detach()}
        if config.adversarial_eps > 0:
            method = "fgsm" if config.adversarial_steps == 1 else "pgd"
            adversarial = attack(self, images, labels, method=method, eps=config.adversarial_eps, steps=config.adversarial_steps)
            adversarial_logits = self(adversarial)
            adversarial_loss = F.cross_entropy(adversarial_logits, labels, label_smoothing=config.label_smoothing)
            loss = (1 - config.adversarial_weight) * loss + config.adversarial_weight * adversarial_loss
            logs["adversarial_accuracy"] = (adversarial_logits.argmax(dim=1) == labels).float().mean().detach()
        yield "classifier", loss, logs

    @torch.no_grad()
    def validation_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Cross-entropy (without label smoothing) and accuracy on held-out images, in eval mode."""
        with eval_mode(self):
            logits = self(batch["images"])
        return {
            "loss": F.cross_entropy(logits.float(), batch["labels"]),
            "accuracy": (logits.argmax(dim=1) == batch["labels"]).float().mean(),
        }


register_model(
    "classifier",
    modality="classifier",
    config=ClassifierConfig,
    description="Small CNN classifier (conv + BatchNorm blocks); the feature network for MNIST-like scores",
)(Classifier)
