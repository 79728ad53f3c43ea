"""Build a family's network from a config, and load a trained model for generation.

This module sits below training, metrics and the studio: loading a model to generate with imports none of
them (a test checks `sys.modules`). `load` returns a `LoadedModel` — the network plus a typed `RunInfo`
record of where its weights came from — instead of attributes patched onto the module; its `generate`
goes through the one generation path (`aigc.generation.pipeline`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from aigc import checkpoint as ckpt
from aigc.config import RunConfig
from aigc.errors import CheckpointError, ConfigError
from aigc.registry import get_model


def build_model(config: RunConfig) -> torch.nn.Module:
    """A fresh (untrained) network of the config's family."""
    return get_model(config.family).model_class(config.model)


@dataclass(frozen=True)
class RunInfo:
    """Where a loaded model's weights came from: what every artifact it makes records as provenance."""

    config: RunConfig  # the run's resolved config
    model_name: str  # how artifacts name it: "family:zoo/NAME" or "family:RUN/step-N"
    checkpoint: Path  # the checkpoint folder the weights were read from
    checkpoint_sha256: str  # first 16 hex digits of the weights file's sha256
    weights: str  # "ema" or "model"
    step: int | None  # training step of the checkpoint
    sidecar: dict[str, Any] = field(default_factory=dict, repr=False)  # checkpoint.json as read

    @property
    def family(self) -> str:
        return self.config.family

    def provenance(self) -> dict[str, Any]:
        """The fields every artifact of this model carries (besides its own settings)."""
        return {"checkpoint_sha256": self.checkpoint_sha256, "weights": self.weights, "step": self.step}


@dataclass(frozen=True)
class LoadedModel:
    """A trained network in eval mode and its run record; `generate` is the one generation path."""

    module: torch.nn.Module
    info: RunInfo
    policy: Any = field(default=None, repr=False)  # used when generate/stream get none: aigc.load sets the default safety policy

    @property
    def request_class(self) -> type:
        """The request type this family's `generate` takes (the CLI and the studio build it from user input)."""
        return self.module.request_class

    def generate(self, request: Any, *, policy: Any = None, progress: Any = None) -> Any:
        from aigc.generation.pipeline import generate

        return generate(self.module, request, info=self.info, policy=self.policy if policy is None else policy, progress=progress)

    def stream(self, request: Any, *, policy: Any = None) -> Any:
        """Text pieces as they are made (text models, one sampled text); afterwards `.artifact` is the sample."""
        from aigc.generation.pipeline import stream

        return stream(self.module, request, info=self.info, policy=self.policy if policy is None else policy)

    def to(self, device: str | torch.device) -> "LoadedModel":
        self.module.to(device)
        return self


REQUIRE_SIGNATURE = "AIGC_REQUIRE_SIGNATURE"  # a PEM file of CAs: load only checkpoints one of them signed


def _check_signature(checkpoint: Path) -> None:
    """With AIGC_REQUIRE_SIGNATURE=CA.pem set, refuse a checkpoint without a valid signature from those CAs."""
    import os

    anchors = os.environ.get(REQUIRE_SIGNATURE)
    if not anchors:
        return
    if not Path(anchors).is_file():
        raise CheckpointError(f"{anchors} is not a file", field=REQUIRE_SIGNATURE, fix="name a PEM file of the CA certificates whose signers you trust, e.g. keys/ca.pem")
    problem = ckpt.signature_problem(checkpoint, Path(anchors).read_bytes())
    if problem is not None:
        raise CheckpointError(f"{checkpoint} is refused: {problem}", field=REQUIRE_SIGNATURE,
                              fix=f"sign it with a trusted key (aigc keys sign {checkpoint} --keys DIR), or unset {REQUIRE_SIGNATURE}")


def load(path: str | Path, *, device: str = "cpu", weights: str = "auto") -> LoadedModel:
    """A trained model from a run folder or checkpoint, in eval mode, ready for `generate`.

    `path` may also be the name of a model in the zoo (`aigc models list`), e.g. "dcgan-mnist".
    weights: "auto" (EMA weights when the run kept them), "ema" or "model".
    With AIGC_REQUIRE_SIGNATURE=CA.pem, a checkpoint loads only when one of those CAs' signers signed it.
    """
    from aigc import zoo

    checkpoint = ckpt.resolve_checkpoint(zoo.resolve(path))
    _check_signature(checkpoint)
    sidecar = ckpt.read_sidecar(checkpoint)
    try:
        config = RunConfig.from_dict(sidecar["config"])
    except ConfigError as error:
        raise CheckpointError(f"the config in {checkpoint} no longer validates: {error}") from None
    module = rebuild_transforms(build_model(config), sidecar.get("transforms", []), checkpoint)
    files = sidecar.get("files", {})
    if weights == "auto":
        weights = "ema" if "ema.safetensors" in files else "model"
    if f"{weights}.safetensors" not in files:
        choices = ", ".join(sorted(name.split(".")[0] for name in files if name not in ("state.safetensors", ckpt.ADAPTER)))
        raise CheckpointError(f"{checkpoint} has no {weights} weights", field="weights", fix=f"use one of: {choices}")
    tensors = ckpt.read_weights(checkpoint, weights, sidecar)  # a LoRA run's adapters merged in
    broken = [name for name, tensor in tensors.items() if tensor.is_floating_point() and not torch.isfinite(tensor).all()]
    if broken:  # they would draw noise or black images without a word
        raise CheckpointError(
            f"{checkpoint} holds weights that are NaN or infinite ({', '.join(broken[:3])}{', ...' if len(broken) > 3 else ''}): training diverged before it was saved",
            field="weights", fix="load an earlier checkpoint (RUN/checkpoints/step-N) or retrain with a lower learning rate / train.grad_clip",
        )
    ckpt.load_weights(module, tensors, source=str(checkpoint), left_out=tuple(sidecar.get("left_out", ())))
    module.to(device).eval()
    info = RunInfo(
        config=config,
        model_name=_model_name(config.family, path, checkpoint),
        checkpoint=checkpoint,
        checkpoint_sha256=files[f"{weights}.safetensors"][:16],
        weights=weights,
        step=sidecar.get("step"),
        sidecar=sidecar,
    )
    return LoadedModel(module, info)


def rebuild_transforms(module: torch.nn.Module, records: Any, checkpoint: Path) -> torch.nn.Module:
    """The network an optimised run holds: each transform its checkpoint records (`aigc optimize`: int8
    layers, pruned channels, ...) re-applied, in order, to the family's fresh build, so that the weights fit.
    The transforms are looked up by name (`registry.TRANSFORMS`); loading imports no optimisation code."""
    from aigc.registry import TRANSFORMS

    if not isinstance(records, list) or not all(isinstance(r, dict) and isinstance(r.get("name"), str) for r in records):
        raise CheckpointError(f"{checkpoint / ckpt.SIDECAR} has a malformed 'transforms' list: the file is corrupt or was edited", fix="optimise the run again")
    for record in records:
        if record["name"] not in TRANSFORMS:
            raise CheckpointError(
                f"{checkpoint} was made by the transform {record['name']!r}, which this aigc does not know",
                field="transforms", fix=f"upgrade aigc; known transforms: {', '.join(TRANSFORMS.names())}",
            )
        module = TRANSFORMS.get(record["name"]).rebuild(module, record)
    return module


def _model_name(family: str, requested: str | Path, checkpoint: Path) -> str:
    """How artifacts name their model: the zoo name, or family:run/checkpoint."""
    from aigc import zoo

    entry = zoo.get_entry(str(requested))
    if entry is not None and not Path(requested).exists():
        return f"{family}:zoo/{entry.name}"
    return f"{family}:{checkpoint.parent.parent.name}/{checkpoint.name}"
