"""Fine-tuning: start a run from another run's weights, and choose which weights train.

    train.init_from = "dcgan-mnist"   # a zoo name, a run folder or one of its checkpoints
    train.allow_partial_init = true    # layers whose names or shapes differ keep their fresh weights
    train.freeze = ["encoder.*"]       # fnmatch patterns over parameter names: no updates
    train.lora = {rank = 4, alpha = 8, targets = ["*attention.qkv"]}   # see training/lora.py

Only the weights come from the parent (EMA weights when it kept them, as generation uses): the optimizer,
learning-rate schedule, step and data order start fresh. A text model keeps the parent's tokenizer, since
its token ids are what the weights learnt. The new run's checkpoints record the parent and the sha256 of
the weights file it started from (`init_from` in checkpoint.json). A resumed run restores its own
checkpoint and never reads the parent again.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import torch

from aigc import checkpoint as ckpt
from aigc import zoo
from aigc.config import RunConfig
from aigc.data.tokenizers import UNK
from aigc.errors import AigcWarning, ConfigError
from aigc.registry import get_model

FIELD = "train.init_from"
UNKNOWN_LIMIT = 0.05  # more <unk> than this in the new training text: the parent's vocabulary does not fit it


@dataclass(frozen=True)
class Parent:
    """The checkpoint a fine-tuning run starts from."""

    source: str  # as the user named it (zoo name or path)
    checkpoint: Path
    sidecar: dict[str, Any]
    weights: str  # the weights file read: "ema" or "model"

    @property
    def family(self) -> str:
        return str(self.sidecar.get("family") or self.sidecar["config"].get("family"))

    def record(self, report: dict[str, list[str]]) -> dict[str, Any]:
        """What the new run's checkpoints say about where its weights started."""
        return {
            "source": self.source,
            "checkpoint": str(self.checkpoint),
            "family": self.family,
            "step": self.sidecar.get("step"),
            "weights": self.weights,
            "sha256": self.sidecar["files"][f"{self.weights}.safetensors"],
            **report,
        }


def find_parent(config: RunConfig) -> Parent | None:
    """The parent checkpoint `train.init_from` names, checked against this run's family; None without one."""
    source = config.train.init_from
    if source is None:
        return None
    checkpoint = ckpt.resolve_checkpoint(zoo.resolve(source))
    sidecar = ckpt.read_sidecar(checkpoint)
    parent = Parent(source, checkpoint, sidecar, "ema" if "ema.safetensors" in sidecar["files"] else "model")
    if parent.family != config.family:
        modality = get_model(config.family).modality
        theirs = sidecar.get("modality", "?")
        kind = f"a {theirs} model" if theirs != modality else "another family"
        raise ConfigError(
            f"{source} is {kind} ({parent.family}); this run trains {config.family} ({modality}): weights only carry over within a family",
            field=FIELD, fix=f"init from a {config.family} run or zoo model (`aigc models list`), or train {parent.family} instead",
        )
    return parent


def inherit_tokenizer(config: RunConfig, parent: Parent) -> None:
    """A text model fine-tunes with its parent's tokenizer: the token ids are what its weights learnt."""
    theirs = parent.sidecar["config"].get("model", {})
    tokenizer = theirs.get("tokenizer")
    own = config.model
    if not tokenizer or not hasattr(own, "tokenizer"):
        return
    if own.tokenizer and own.tokenizer != tokenizer:
        raise ConfigError(
            f"model.tokenizer differs from the tokenizer of {parent.source}", field="model.tokenizer",
            fix="leave model.tokenizer out: a fine-tuned model keeps its parent's tokenizer",
        )
    for key in ("tokenizer_kind", "vocab_size"):
        mine = getattr(own, key, None)
        if key in own.model_fields_set and mine is not None and mine != theirs.get(key):
            raise ConfigError(
                f"model.{key} is {mine!r}, but {parent.source} was trained with {theirs.get(key)!r}",
                field=f"model.{key}", fix=f"leave model.{key} out: a fine-tuned model keeps its parent's tokenizer ({theirs.get('tokenizer_kind')})",
            )
    own.tokenizer_kind = theirs.get("tokenizer_kind", own.tokenizer_kind)
    own.tokenizer = tokenizer
    own.vocab_size = theirs.get("vocab_size")


def check_vocabulary(split: Any, parent: Parent) -> None:
    """The parent's vocabulary must cover the new training text: symbols it lacks become <unk>."""
    if hasattr(split, "tokens"):
        rows = [split.tokens]
    else:  # pairs: PromptedPairs.sequences (a language model) or TextPairs' sources and targets (seq2seq)
        rows = [torch.tensor(ids) for ids in getattr(split, "sequences", None) or getattr(split, "sources", []) + getattr(split, "targets", [])]
    total = sum(len(row) for row in rows)
    if total == 0:
        return
    unknown = sum(int((torch.as_tensor(row) == UNK).sum()) for row in rows) / total
    if unknown > UNKNOWN_LIMIT:
        raise ConfigError(
            f"{unknown:.1%} of the training tokens are unknown to the tokenizer of {parent.source} (its vocabulary lacks their symbols)",
            field=FIELD, fix="fine-tune from a model whose tokenizer covers this text (bpe covers any text), or train from scratch",
        )
    if unknown > 0:
        warnings.warn(f"{unknown:.2%} of the training tokens are unknown to the tokenizer of {parent.source}; they train as <unk>", AigcWarning, stacklevel=3)


def load_parent_weights(model: torch.nn.Module, parent: Parent, allow_partial: bool) -> dict[str, list[str]]:
    """Copy the parent's weights into `model`; names or shapes that differ are an error listing them, or with
    `allow_partial` keep their fresh initialisation. Weights the parent's export left out on purpose (a zoo
    GAN's discriminator, tied copies) keep theirs without asking. Returns what was kept fresh."""
    tensors = ckpt.read_weights(parent.checkpoint, parent.weights, parent.sidecar)
    own = model.state_dict()
    left_out = tuple(parent.sidecar.get("left_out", ()))
    missing = sorted(k for k in own if k not in tensors and not k.startswith(left_out))
    unexpected = sorted(k for k in tensors if k not in own)
    reshaped = sorted(k for k in own if k in tensors and own[k].shape != tensors[k].shape)
    if (missing or unexpected or reshaped) and not allow_partial:
        lines = [f"{k}: parent {tuple(tensors[k].shape)} vs model {tuple(own[k].shape)}" for k in reshaped]
        lines += [f"{k}: not in the parent" for k in missing] + [f"{k}: not in this model" for k in unexpected]
        shown = "; ".join(lines[:12]) + (f"; ... ({len(lines)} in all)" if len(lines) > 12 else "")
        raise ConfigError(
            f"the weights of {parent.source} do not fit this model: {shown}", field=FIELD,
            fix="use the parent's model settings, or --allow-partial (train.allow_partial_init=true) to keep fresh weights for these (a new head)",
        )
    fresh = [k for k in own if k not in tensors or k in reshaped]
    kept = {k: v for k, v in tensors.items() if k in own and k not in reshaped}
    model.load_state_dict({**own, **kept})
    if allow_partial and (missing or reshaped or unexpected):
        warnings.warn(
            f"init from {parent.source}: {len(kept)} tensors loaded; kept fresh: {', '.join(missing + reshaped) or 'none'}"
            + (f"; ignored: {', '.join(unexpected)}" if unexpected else ""),
            AigcWarning, stacklevel=3,
        )
    return {"kept_fresh": fresh, "ignored": unexpected}


def freeze(model: torch.nn.Module, patterns: list[str]) -> list[str]:
    """Turn off gradients for the parameters whose names match any pattern; returns their names. A pattern
    that matches no parameter is an error that lists the model's modules."""
    names = [name for name, _ in model.named_parameters()]
    for pattern in patterns:
        if not any(fnmatch(name, pattern) for name in names):
            modules = [name for name, module in model.named_modules() if name and any(True for _ in module.parameters(recurse=False))]
            shown = ", ".join(modules[:30]) + (f", ... ({len(modules)} in all)" if len(modules) > 30 else "")
            raise ConfigError(
                f"pattern {pattern!r} matches no parameter", field="train.freeze",
                fix=f"patterns match parameter names such as {names[0]!r}; the modules with weights: {shown}",
            )
    frozen = []
    for name, parameter in model.named_parameters():
        if any(fnmatch(name, pattern) for pattern in patterns):
            parameter.requires_grad_(False)
            frozen.append(name)
    return frozen
