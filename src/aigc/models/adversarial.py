"""Adversarial examples under an L-infinity budget: FGSM and PGD, for evaluating and for training classifiers.

    adversarial = pgd(classifier, images, labels, eps=0.1, steps=10, alpha=0.025, generator=g)

`images` are a classifier's input (float [B, C, H, W] in [-1, 1], x / 127.5 - 1 of the pixels, as every
family here takes them); `eps` and `alpha` are in pixel units, a share of the full range (0.1 = 25.5 of 255
grey levels, the common MNIST budget), so the perturbation in input units is 2 * eps. Each result stays a
valid image (clamped to [-1, 1]) within eps of the original in every pixel. Only the input's gradient is
taken (torch.autograd.grad): the classifier's parameters get no gradients from an attack.

It lives beside the families because training uses it too (the classifier's `adversarial_eps`: Goodfellow
et al. 2015, sec. 6; Madry et al. 2018); `aigc.safety.robustness` measures accuracy under attack with it.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

LOW, HIGH = -1.0, 1.0  # the input range; a pixel share p is p * (HIGH - LOW) in input units


def _input_gradient(logits_of: Callable[[Tensor], Tensor], images: Tensor, labels: Tensor) -> Tensor:
    """d cross-entropy / d images, for a batch (summed loss: each image's gradient is its own)."""
    images = images.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(logits_of(images).float(), labels, reduction="sum")
        (gradient,) = torch.autograd.grad(loss, images)
    return gradient


def fgsm(logits_of: Callable[[Tensor], Tensor], images: Tensor, labels: Tensor, eps: float) -> Tensor:
    """The fast gradient sign method (Goodfellow et al. 2015, https://arxiv.org/abs/1412.6572, eq. 3):
    x' = clip(x + eps * sign(grad_x J(theta, x, y)))."""
    radius = eps * (HIGH - LOW)
    gradient = _input_gradient(logits_of, images, labels)
    return (images.detach() + radius * gradient.sign()).clamp_(LOW, HIGH)


def pgd(
    logits_of: Callable[[Tensor], Tensor], images: Tensor, labels: Tensor, eps: float, *, steps: int = 10,
    alpha: float | None = None, random_start: bool = True, generator: torch.Generator | None = None,
) -> Tensor:
    """Projected gradient descent (Madry et al. 2018, https://arxiv.org/abs/1706.06083, eq. 2): from a
    random start in the eps-ball, `steps` signed-gradient steps of `alpha` (default 2.5 * eps / steps),
    each projected back onto the ball around x and the valid range."""
    radius = eps * (HIGH - LOW)
    step = (alpha if alpha is not None else 2.5 * eps / steps) * (HIGH - LOW)
    original = images.detach()
    adversarial = original.clone()
    if random_start:
        noise = torch.rand(original.shape, generator=generator, device=original.device, dtype=original.dtype)
        adversarial = (adversarial + (2 * noise - 1) * radius).clamp_(LOW, HIGH)  # uniform in the ball
    for _ in range(steps):
        gradient = _input_gradient(logits_of, adversarial, labels)
        adversarial = adversarial + step * gradient.sign()  # 1. ascend the loss
        adversarial = torch.max(torch.min(adversarial, original + radius), original - radius)  # 2. project onto the ball
        adversarial = adversarial.clamp_(LOW, HIGH)  # 3. and onto valid images
    return adversarial.detach()


def attack(logits_of: Callable[[Tensor], Tensor], images: Tensor, labels: Tensor, *, method: str, eps: float, steps: int = 10,
           alpha: float | None = None, generator: torch.Generator | None = None) -> Tensor:
    """`fgsm` or `pgd` by name (what configs and the CLI say)."""
    if method == "fgsm":
        return fgsm(logits_of, images, labels, eps)
    if method == "pgd":
        return pgd(logits_of, images, labels, eps, steps=steps, alpha=alpha, generator=generator)
    raise ValueError(f"unknown attack {method!r}: use fgsm or pgd")
