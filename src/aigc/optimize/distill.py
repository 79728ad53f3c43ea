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


def teacher_blocks(student_layers: int, teacher_layers: int) -> list[int]:
    """Which teacher blocks a shallower student starts from: the first, then evenly spaced up to the last
    (2 of 4: blocks 0 and 3). The first alone for a 1-block student: on gpt-shakespeare the teacher's block 0
    under its final norm scores 1.86 nats/char on 128 validation windows before any training, blocks 1-3 2.99-3.18."""
    if student_layers == 1:
        return [0]
    return [round(i * (teacher_layers - 1) / (student_layers - 1)) for i in range(student_layers)]


@torch.no_grad()
def init_from_teacher(student: nn.Module, teacher: nn.Module) -> dict:
    """Start a GPT student from its teacher's weights (in place): the token and position embeddings (and so
    the tied output layer), the final norm, and `teacher_blocks` of the blocks; a narrower MLP keeps the hidden
    units with the largest |fc row| x |proj column|. Needs the same width and heads; returns the record."""
    from aigc.models.text.transformer import GPT

    if not (isinstance(student, GPT) and isinstance(teacher, GPT)):
        raise AigcError(f"--student-init teacher copies GPT blocks; the student is {type(student).__name__}, the teacher {type(teacher).__name__}",
                        field="--student-init", fix="use --student-init random for this student")
    mine, theirs = student.config, teacher.config
    for key in ("embedding_dim", "num_heads", "positions", "bias", "tie_weights"):
        if getattr(mine, key) != getattr(theirs, key):
            raise AigcError(f"--student-init teacher needs the teacher's {key} ({getattr(theirs, key)}), the student has {getattr(mine, key)}",
                            field="--student-init", fix=f"--set model.{key}={getattr(theirs, key)}, or --student-init random")
    if mine.num_layers > theirs.num_layers or mine.mlp_ratio > theirs.mlp_ratio:
        raise AigcError(f"--student-init teacher takes a student no deeper or wider than its teacher ({theirs.num_layers} blocks, mlp_ratio {theirs.mlp_ratio}); "
                        f"the student has {mine.num_layers} blocks, mlp_ratio {mine.mlp_ratio}", field="--student-init",
                        fix="choose fewer model.num_layers or a smaller model.mlp_ratio, or --student-init random")
    student.token_embedding.weight.copy_(teacher.token_embedding.weight)
    if student.position_embedding is not None:
        student.position_embedding.weight.copy_(teacher.position_embedding.weight[: mine.context_length])
    student.norm.load_state_dict(teacher.norm.state_dict())
    if not mine.tie_weights:
        student.output.weight.copy_(teacher.output.weight)
    blocks = teacher_blocks(mine.num_layers, theirs.num_layers)
    for source, target in zip((teacher.blocks[i] for i in blocks), student.blocks):
        for name in ("norm1", "attention", "norm2"):
            getattr(target, name).load_state_dict(getattr(source, name).state_dict())
        hidden = target.mlp.fc.out_features
        importance = source.mlp.fc.weight.norm(dim=1) * source.mlp.proj.weight.norm(dim=0)  # [teacher hidden]
        kept = importance.topk(hidden).indices.sort().values
        target.mlp.fc.weight.copy_(source.mlp.fc.weight[kept])
        target.mlp.proj.weight.copy_(source.mlp.proj.weight[:, kept])
        if mine.bias:
            target.mlp.fc.bias.copy_(source.mlp.fc.bias[kept])
            target.mlp.proj.bias.copy_(source.mlp.proj.bias)
    return {"init": "teacher", "blocks": blocks, "mlp_hidden": f"{mine.mlp_ratio * mine.embedding_dim} of {theirs.mlp_ratio * theirs.embedding_dim} units kept (largest |fc row| x |proj column|)"}


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
