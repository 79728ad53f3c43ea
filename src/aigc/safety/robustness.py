"""Accuracy under attack: how a classifier (the packaged MNIST / Fashion-MNIST ones that define the
project's image scores, the spoken-digit one behind the audio scores, or any classifier run) holds up against FGSM and PGD (models/adversarial.py).

    report = evaluate_robustness(classifier, images, labels, attack="pgd", eps=0.1, steps=10)
    report.clean_accuracy, report.attacked_accuracy

`images` are uint8 [N, C, H, W] test images (the classifier takes x / 127.5 - 1, every image family's
input) or int16 [N, 1, T] clips for an audio classifier such as the packaged spoken-digit one (x / 32768,
the audio families' input); it returns logits. Budgets are a share of the input range: eps 0.1 lets every
pixel move by 25.5 grey levels, eps 0.01 every audio sample by 1% of full scale (655 of 32,768). An image counts as robust when the attack leaves it classified correctly; images
already misclassified count as attacked too (the usual robust accuracy).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from aigc.errors import AigcError
from aigc.models.adversarial import attack as run_attack
from aigc.models.sampling import eval_mode

ATTACKS = ("fgsm", "pgd")
MAX_EPS = 0.5  # half the range: beyond it any image can be turned into any other


@dataclass(frozen=True)
class RobustnessReport:
    target: str  # what was attacked: a backbone name or a run
    attack: str  # fgsm | pgd
    eps: float  # L-inf budget, pixel units (share of the range)
    steps: int  # PGD iterations (1 for FGSM)
    alpha: float | None  # PGD step, pixel units (None for FGSM)
    count: int  # test images attacked
    clean_accuracy: float
    attacked_accuracy: float
    cpu_seconds: float  # CPU time of the attack and the evaluation (process time)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_attack(attack: str, eps: float, steps: int, alpha: float | None) -> tuple[int, float | None]:
    """Validated (steps, alpha) for an attack, or an AigcError naming the option and its range."""
    if attack not in ATTACKS:
        raise AigcError(f"unknown attack {attack!r}", field="--attack", fix="use fgsm or pgd")
    if not 0 < eps <= MAX_EPS:
        raise AigcError(f"eps {eps:g} is out of range: expected above 0 and at most {MAX_EPS} (a share of the pixel range; 0.1 = 25.5 of 255 grey levels)",
                        field="--eps", fix="use e.g. --eps 0.1 (MNIST's usual budget) or --eps 0.3")
    if attack == "fgsm":
        return 1, None
    if not 1 <= steps <= 1000:
        raise AigcError(f"steps {steps} is out of range: expected 1 to 1000", field="--steps", fix="use e.g. --steps 10")
    alpha = 2.5 * eps / steps if alpha is None else alpha
    if not 0 < alpha <= eps:
        raise AigcError(f"alpha {alpha:g} is out of range: expected above 0 and at most eps ({eps:g})", field="--alpha", fix="leave it out (2.5 * eps / steps) or use eps / 4")
    return steps, alpha


def to_unit_range(inputs: Tensor) -> Tensor:
    """Stored test inputs as the float [-1, 1] a classifier takes: uint8 pixels x / 127.5 - 1, int16 samples x / 32768."""
    if inputs.dtype == torch.uint8:
        return inputs.to(torch.float32).div_(127.5).sub_(1.0)
    if inputs.dtype == torch.int16:
        return inputs.to(torch.float32).div_(32768.0)
    raise AigcError(f"test inputs of dtype {inputs.dtype} cannot be attacked", field="TARGET", fix="attack an image (uint8) or audio (int16) classifier")


def evaluate_robustness(classifier: nn.Module, images: Tensor, labels: Tensor, *, attack: str, eps: float, steps: int = 10,
                        alpha: float | None = None, target: str = "", batch_size: int = 500, seed: int = 0) -> RobustnessReport:
    """Clean and attacked accuracy of `classifier` on uint8 `images` [N, C, H, W] or int16 clips [N, 1, T]."""
    steps, alpha = check_attack(attack, eps, steps, alpha)
    generator = torch.Generator().manual_seed(seed)  # PGD's random starts: the same numbers every run
    started = time.process_time()
    clean = robust = 0
    with eval_mode(classifier):  # BatchNorm's running statistics, no dropout: the network as it scores
        for start in range(0, len(images), batch_size):
            batch = to_unit_range(images[start : start + batch_size])
            truth = labels[start : start + batch_size]
            with torch.no_grad():
                clean += int((classifier(batch).argmax(dim=1) == truth).sum())
            adversarial = run_attack(classifier, batch, truth, method=attack, eps=eps, steps=steps, alpha=alpha, generator=generator)
            with torch.no_grad():
                robust += int((classifier(adversarial).argmax(dim=1) == truth).sum())
    count = len(images)
    return RobustnessReport(target, attack, eps, steps, alpha, count, clean / count, robust / count, time.process_time() - started)
