"""What a conditional family is told and how a request becomes that: class labels or prompt embeddings
(ConditionEmbedding), the checks that a config and a request fit the model, and the training batch's condition."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from aigc.errors import AigcError, ConfigError


class ConditionEmbedding(nn.Module):
    """What a conditional generator is told, as one vector per sample: a class label or a prompt embedding.

    kind "class": a learned embedding per class; kind "text": an MLP on the frozen prompt encoder's
    embedding. Both keep one extra learned "no condition" vector, which classifier-free guidance trains
    by dropping the condition (Ho & Salimans 2022, https://arxiv.org/abs/2207.12598, Algorithm 1) and
    samples with at guidance time. kind "none" returns None.
    """

    def __init__(self, kind: str, out_features: int, *, num_classes: int | None = None, text_dim: int | None = None):
        super().__init__()
        self.kind = kind
        if kind == "class":
            self.table = nn.Embedding(num_classes + 1, out_features)  # row num_classes = "no condition"
            self.num_classes = num_classes
        elif kind == "text":
            self.standardize = caption_standardizer(text_dim)  # removes the captions' common direction
            self.project = nn.Sequential(nn.Linear(text_dim, out_features), nn.SiLU(), nn.Linear(out_features, out_features))
            self.null = nn.Parameter(torch.zeros(out_features))

    def forward(self, condition: torch.Tensor | None, drop: torch.Tensor | None = None) -> torch.Tensor | None:
        """condition: labels [B] (int64) or text embeddings [B, D]; drop: bool [B], True = no condition."""
        if self.kind == "none":
            return None
        if self.kind == "class":
            labels = condition if drop is None else torch.where(drop, torch.full_like(condition, self.num_classes), condition)
            return self.table(labels)  # [B, out]
        embedded = self.project(self.standardize(condition))  # [B, out]
        if drop is not None:
            embedded = torch.where(drop[:, None], self.null.expand_as(embedded), embedded)
        return embedded

    def unconditional(self, count: int, device: torch.device) -> torch.Tensor | None:
        """The "no condition" vector for `count` samples (guidance's unconditional branch)."""
        if self.kind == "none":
            return None
        if self.kind == "class":
            return self.table(torch.full((count,), self.num_classes, device=device, dtype=torch.long))
        return self.null.expand(count, -1)


def caption_standardizer(dim: int) -> nn.BatchNorm1d:
    """Standardises prompt embeddings per dimension with running statistics of the training captions.

    Sentence embeddings of captions share a large common direction ("a handwritten seven" and "a handwritten
    one" have cosine 0.8); standardising each dimension (BatchNorm without affine, cumulative average)
    removes it, so the differences that name the content reach the network at full scale. Eval mode uses
    the statistics."""
    return nn.BatchNorm1d(dim, affine=False, momentum=None)


def resolve_condition(model: nn.Module, request, device: torch.device, kind: str | None = None) -> tuple[Tensor | None, list[int] | None, list[str] | None]:
    """(condition tensor, labels, prompts) for a request: labels [B] for class models, prompt embeddings
    [B, D] for text models; errors that say what to do when the request does not fit the model."""
    config = model.config
    kind = kind or config.conditioning  # "none", "class" or "text"
    prompt = getattr(request, "prompt", None)
    if kind != "text" and prompt is not None:
        described = "unconditional" if kind == "none" else "class-conditional"
        raise AigcError(
            f"this model is {described} and takes no prompt",
            field="prompt",
            fix="leave --prompt out" + (" and choose classes with --label" if kind == "class" else "")
            + "; text-to-image needs a t2i-* model",
        )
    if kind == "none":
        if getattr(request, "guidance", None) is not None:
            raise AigcError("an unconditional model has nothing to guide towards", field="guidance", fix="leave --guidance out")
        request.labels_for(None)  # a label for an unconditional model is an error too
        return None, None, None
    if kind == "class":
        labels = request.labels_for(config.num_classes)
        return torch.tensor(labels, device=device), labels, None
    # text
    prompts = request.prompts_for() if hasattr(request, "prompts_for") else None
    labels = None
    if prompts is None:
        if config.class_prompts is None:
            raise AigcError(
                "this text-to-image model needs a prompt",
                field="prompt",
                fix='give one, e.g. --prompt "a handwritten seven" or --prompt "一个笑脸"',
            )
        labels = request.labels_for(len(config.class_prompts))  # label k stands for class k's caption
        prompts = [config.class_prompts[label] for label in labels]
    elif request.labels is not None:
        raise AigcError("give a prompt or labels, not both", field="labels", fix="leave --label out when you give --prompt")
    from aigc.prompts import encode_prompts

    return encode_prompts(config.prompt_encoder, prompts).to(device), labels, prompts


def condition_classes(config, kind: str) -> int | None:
    """How many labels generation takes: a class-conditional model's classes, or the captioned classes whose
    prompts the labels of a text-conditional model stand for; None where labels mean nothing."""
    if kind == "class":
        return config.num_classes
    if kind == "text" and config.class_prompts is not None:
        return len(config.class_prompts)
    return None


def preview_request(model: nn.Module, kind: str, per_class: int = 8):
    """What the loop's sample grids show: 64 fixed seeds; for conditional models a column per class (labels
    cycle 0..K-1), and for prompt models without classes one prompt."""
    if model.num_classes is not None:
        return model.request_class(count=model.num_classes * per_class, seed=0)
    if kind == "text":
        return model.request_class(count=16, seed=0, prompt="a smiling face")
    return model.request_class(count=64, seed=0)


def check_conditioning(config, kind: str | None = None) -> None:
    kind = kind or config.conditioning
    if kind == "text" and config.text_embedding_dim is None:
        raise ConfigError(
            "text conditioning needs prompt embeddings, which come from a captioned dataset",
            field="data.name",
            fix="train on a captioned dataset (mnist-captions, fashion-mnist-captions, digits-captions, emoji), "
            "or set model.text_embedding_dim to the prompt encoder's size",
        )
    if kind == "class" and config.num_classes is None:
        raise ConfigError("class conditioning needs the number of classes", field="model.num_classes", fix="use a labelled dataset or set model.num_classes")


def batch_condition(config, batch: dict[str, Tensor], kind: str | None = None) -> Tensor | None:
    """The condition of a training batch: its labels or its caption embeddings."""
    kind = kind or config.conditioning
    if kind == "class":
        return batch["labels"]
    if kind == "text":
        if "text_embeddings" not in batch:
            raise ConfigError("the dataset gives no captions", field="data.name", fix="use a captioned dataset (mnist-captions, emoji, ...)")
        return batch["text_embeddings"]
    return None
