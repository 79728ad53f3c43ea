"""Knowledge distillation objectives, as networks the one training loop trains (STYLE.md #6).

`OutputMatching` (a GAN generator learns to draw what a teacher draws from the same noise): how a pruned
generator recovers (see finetune.py for why not adversarially), and the objective of a generator student. The teacher is frozen; only the student's generator has an optimizer.
"""

from __future__ import annotations

import copy
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aigc.config import OptimConfig, build_optimizer
from aigc.errors import AigcError


def can_match_outputs(model: nn.Module) -> bool:
    """A GAN-style model whose generator draws from noise alone or noise and a class label."""
    generator = getattr(model, "generator", None)
    return generator is not None and hasattr(generator, "noise_dim") and getattr(generator, "augmentation", None) is None


class OutputMatching(nn.Module):
    """loss = mean squared difference between student(z, y) and teacher(z, y), z ~ N(0, I), y uniform."""

    def __init__(self, student: nn.Module, teacher: nn.Module):
        super().__init__()
        if not can_match_outputs(student):
            raise AigcError(f"{type(student).__name__} has no noise-driven generator to match outputs with",
                            field="--finetune", fix="fine-tune a GAN generator, or a model whose own training step needs no discriminator")
        self.student = student
        self.teacher = copy.deepcopy(teacher).eval().requires_grad_(False)  # never updated, never in train mode

    def configure_optimizers(self, optim: OptimConfig) -> dict[str, torch.optim.Optimizer]:
        return {"student": build_optimizer(self.student.generator.parameters(), optim)}

    def training_step(self, batch: dict[str, Tensor]) -> Iterator[tuple[str, Tensor, dict[str, Tensor]]]:
        size = next(iter(batch.values())).shape[0]
        generator = self.student.generator
        noise = torch.randn(size, generator.noise_dim)
        labels = None
        if getattr(generator, "label_embedding", None) is not None:
            labels = torch.randint(0, generator.label_embedding.num_embeddings, (size,))
        with torch.no_grad():
            target = self.teacher.generator(noise, labels)  # [B, C, H, W]
        loss = F.mse_loss(generator(noise, labels), target)
        yield "student", loss, {}

    def train(self, mode: bool = True) -> "OutputMatching":
        super().train(mode)
        self.teacher.eval()  # its BatchNorm statistics are part of what the student copies
        return self


class LogitDistillation(nn.Module):
    """A language-model student trained on its teacher's softened predictions and the true next tokens:

        loss = alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * cross-entropy(student, targets)

    (Hinton, Vinyals & Dean 2015, https://arxiv.org/abs/1503.02531, §2: the T^2 keeps the soft term's gradients
    at the scale of the hard one's as T changes). Both read the same token windows; the teacher never trains."""

    def __init__(self, student: nn.Module, teacher: nn.Module, temperature: float = 2.0, alpha: float = 0.5):
        super().__init__()
        self.student = student
        self.teacher = copy.deepcopy(teacher).eval().requires_grad_(False)
        self.temperature, self.alpha = temperature, alpha

    def configure_optimizers(self, optim: OptimConfig) -> dict[str, torch.optim.Optimizer]:
        return {"student": self.student.configure_optimizers(optim)["model"]}

    def training_step(self, batch: dict[str, Tensor]) -> Iterator[tuple[str, Tensor, dict[str, Tensor]]]:
        student_logits = self.student(batch["inputs"])  # [B, T, vocab]
        with torch.no_grad():
            teacher_logits = self.teacher(batch["inputs"])
        t = self.temperature
        counted = batch["targets"] != -100  # [B, T]
        soft = F.kl_div(F.log_softmax(student_logits[counted] / t, dim=-1), F.log_softmax(teacher_logits[counted] / t, dim=-1),
                        log_target=True, reduction="batchmean") * t * t
        hard = F.cross_entropy(student_logits[counted], batch["targets"][counted])
        yield "student", self.alpha * soft + (1 - self.alpha) * hard, {"soft": soft.detach(), "hard": hard.detach()}

    def validation_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return self.student.validation_step(batch)

    def train(self, mode: bool = True) -> "LogitDistillation":
        super().train(mode)
        self.teacher.eval()
        return self
