"""Model families and datasets by name: register, get, list (STYLE.md #2).

A new family is one file that ends with a `register_model(...)` line; a new dataset is one loader
function decorated with `register_dataset(...)`. Nothing else in the package branches on names.
Families register themselves when `aigc.models` is imported, datasets when `aigc.data` is imported;
`get_*` and `list_*` import them on first use so that callers never have to.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

from aigc.errors import ConfigError


@dataclass(frozen=True)
class ModelSpec:
    name: str
    modality: str  # "image" | "text" | "audio"
    model_class: type  # an nn.Module with configure_optimizers / training_step / generate
    config_class: type  # a pydantic BaseConfig subclass holding this family's defaults
    description: str = ""


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    modality: str
    load: Callable[..., Any]  # load(data_config, model_config) -> aigc.data.DatasetBundle
    description: str = ""
    source: str = ""  # where the data comes from, offline: a package, a Debian path, a user folder
    num_classes: int | None = None
    available: Callable[[], str | None] = field(default=lambda: None)  # None, or why it is not


_MODELS: dict[str, ModelSpec] = {}
_DATASETS: dict[str, DatasetSpec] = {}


def register_model(name: str, *, modality: str, config: type, description: str = ""):
    """Class decorator: `register_model("dcgan", modality="image", config=DCGANConfig)(GAN)`."""

    def decorate(model_class: type) -> type:
        if name in _MODELS:
            raise RuntimeError(f"model family {name!r} is registered twice")
        _MODELS[name] = ModelSpec(name, modality, model_class, config, description)
        return model_class

    return decorate


def register_dataset(
    name: str,
    *,
    modality: str,
    description: str = "",
    source: str = "",
    num_classes: int | None = None,
    available: Callable[[], str | None] | None = None,
):
    """Function decorator for a dataset loader `load(data_config, model_config) -> DatasetBundle`."""

    def decorate(load: Callable[..., Any]) -> Callable[..., Any]:
        if name in _DATASETS:
            raise RuntimeError(f"dataset {name!r} is registered twice")
        _DATASETS[name] = DatasetSpec(
            name, modality, load, description, source, num_classes, available or (lambda: None)
        )
        return load

    return decorate


def _import_builtins() -> None:
    importlib.import_module("aigc.models")
    importlib.import_module("aigc.data")


def _lookup(table: dict[str, Any], name: str, what: str, field: str) -> Any:
    if name not in table:
        raise ConfigError(f"unknown {what} {name!r}", field=field, fix=f"use one of: {', '.join(sorted(table))}")
    return table[name]


def get_model(name: str) -> ModelSpec:
    _import_builtins()
    return _lookup(_MODELS, name, "model family", "family")


def list_models() -> list[ModelSpec]:
    _import_builtins()
    return [_MODELS[name] for name in sorted(_MODELS)]


def get_dataset(name: str) -> DatasetSpec:
    _import_builtins()
    return _lookup(_DATASETS, name, "dataset", "data.name")


def list_datasets() -> list[DatasetSpec]:
    _import_builtins()
    return [_DATASETS[name] for name in sorted(_DATASETS)]


# ------------------------------------------------------------------------------- prompt encoders
# Frozen text encoders that turn prompts into the vectors text-to-image families are conditioned on.


@dataclass(frozen=True)
class PromptEncoderSpec:
    name: str
    load: Callable[[], Any]  # load() -> an object with .dim and .encode(list[str]) -> float32 [N, dim]
    dim: int
    languages: str  # what it reads, in words
    source: str  # the package it ships in, with the install command
    available: Callable[[], str | None] = field(default=lambda: None)  # None, or why it is not


_PROMPT_ENCODERS: dict[str, PromptEncoderSpec] = {}


def register_prompt_encoder(name: str, *, dim: int, languages: str, source: str, available: Callable[[], str | None] | None = None):
    """Function decorator for a loader `load() -> encoder`."""

    def decorate(load: Callable[[], Any]) -> Callable[[], Any]:
        if name in _PROMPT_ENCODERS:
            raise RuntimeError(f"prompt encoder {name!r} is registered twice")
        _PROMPT_ENCODERS[name] = PromptEncoderSpec(name, load, dim, languages, source, available or (lambda: None))
        return load

    return decorate


def get_prompt_encoder(name: str) -> PromptEncoderSpec:
    importlib.import_module("aigc.prompts")
    return _lookup(_PROMPT_ENCODERS, name, "prompt encoder", "model.prompt_encoder")


def list_prompt_encoders() -> list[PromptEncoderSpec]:
    importlib.import_module("aigc.prompts")
    return [_PROMPT_ENCODERS[name] for name in sorted(_PROMPT_ENCODERS)]
