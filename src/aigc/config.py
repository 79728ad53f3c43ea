"""Typed run configs: named presets or TOML files, plus validated `--set key=value` overrides.

A run config has five sections:

    family = "dcgan"          # which registered model family to build
    [model]  ...              # that family's own config class (defaults live there)
    [data]   ...              # DataConfig
    [optim]  ...              # OptimConfig
    [train]  ...              # TrainConfig: the one loop's settings

Presets are TOML files shipped inside the package (`aigc/presets/*.toml`, so they work from a wheel as
well as from a checkout); a preset may start from another with `extends = "name"`. Every error names the
key, what was expected and the valid choices (STYLE.md #4, #11).
"""

from __future__ import annotations

import copy
import sys
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, ValidationError, field_validator

from aigc.errors import ConfigError

if TYPE_CHECKING:
    import torch

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib


class BaseConfig(BaseModel):
    """Base of every config section: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


class DataConfig(BaseConfig):
    name: str = "mnist"  # a registered dataset (`aigc data list`)
    path: str | None = None  # a user folder or file to read instead of the packaged source
    val_fraction: float = Field(0.05, ge=0.0, lt=1.0)  # share of the training split held out for validation
    split_seed: int = 0  # seeds the train/val split, independent of the training seed
    limit: int | None = Field(None, ge=1)  # keep only the first N training examples (tiny runs, smoke tests)


class OptimConfig(BaseConfig):
    name: Literal["adam", "adamw", "rmsprop", "sgd"] = "adam"
    lr: float = Field(2e-4, gt=0)  # peak learning rate; the schedule in [train] scales it
    betas: tuple[float, float] = (0.5, 0.999)  # Adam/AdamW; 0.5 is the DCGAN paper's beta1
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.0, ge=0)  # SGD and RMSprop
    eps: float = Field(1e-8, gt=0)


def build_optimizer(parameters: Iterable["torch.nn.Parameter"], config: OptimConfig) -> "torch.optim.Optimizer":
    """The optimizer an OptimConfig names, over the trainable parameters. It lives beside OptimConfig so that
    model families (which build their own optimizers) need nothing from `aigc.training`."""
    import torch  # here, not at the top: reading and validating configs needs no torch

    parameters = [p for p in parameters if p.requires_grad]
    if config.name == "adam":
        return torch.optim.Adam(parameters, lr=config.lr, betas=config.betas, eps=config.eps, weight_decay=config.weight_decay)
    if config.name == "adamw":
        return torch.optim.AdamW(parameters, lr=config.lr, betas=config.betas, eps=config.eps, weight_decay=config.weight_decay)
    if config.name == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=config.lr, eps=config.eps, momentum=config.momentum, weight_decay=config.weight_decay)
    return torch.optim.SGD(parameters, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


class EarlyStoppingConfig(BaseConfig):
    metric: str = "val/loss"  # a key logged at evaluation time
    mode: Literal["min", "max"] = "min"
    patience: int = Field(5, ge=1)  # evaluations without improvement before stopping
    min_delta: float = Field(0.0, ge=0)  # an improvement smaller than this does not count


class LoRAConfig(BaseConfig):
    """Low-rank adapters (Hu et al. 2021, https://arxiv.org/abs/2106.09685): W x + (alpha / rank) B A x."""

    rank: int = Field(4, ge=1)  # r, the inner width of each adapter
    alpha: float = Field(8.0, gt=0)  # the update is scaled by alpha / rank
    targets: list[str] = Field(min_length=1)  # fnmatch patterns over module names, e.g. ["*attention.qkv"]


class TrainConfig(BaseConfig):
    seed: int = 0  # seeds weights, noise and data order; the same seed gives the same run
    max_steps: int = Field(1000, ge=1)  # optimisation steps (one batch each)
    max_minutes: float | None = Field(None, gt=0)  # wall-clock budget; stops (and saves) when reached
    # CPU-time budget of this process (all threads, user + system): the same work whatever else the machine
    # runs, so "20 CPU-minutes" compares two models trained on a shared machine; counts from this start
    max_cpu_minutes: float | None = Field(None, gt=0)
    batch_size: int = Field(64, ge=1)  # per process; under torchrun the global batch is this x world size
    device: str = "auto"  # "auto" (cuda if present, else cpu), "cpu", "cuda", "cuda:1", ...
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16 = autocast on devices that support it
    grad_clip: float | None = Field(None, gt=0)  # max global gradient norm per optimizer
    ema_decay: float | None = Field(None, gt=0, lt=1)  # EMA of weights, used for samples and generation
    lr_schedule: Literal["constant", "cosine", "linear"] = "constant"  # decay to 0 at max_steps
    warmup_steps: int = Field(0, ge=0)  # linear warm-up before the schedule
    log_every: int = Field(50, ge=1)  # steps between metric log lines
    sample_every: int = Field(500, ge=0)  # steps between sample grids (0: never; one at the end always)
    checkpoint_every: int = Field(1000, ge=0)  # steps between checkpoints (0: only at the end / on signal)
    keep_checkpoints: int = Field(2, ge=1)  # older checkpoints are deleted
    eval_every: int = Field(0, ge=0)  # steps between validation passes (0: never)
    eval_batches: int = Field(20, ge=1)  # validation batches per pass
    eval_metrics: list[Literal["fid", "kid", "is", "prdc"]] = []  # sample-quality scores at evaluation passes
    eval_metrics_every: int = Field(0, ge=0)  # steps between those scores (a multiple of eval_every; 0: every pass)
    eval_samples: int = Field(1000, ge=2)  # generated images per sample-quality score
    eval_feature_network: str | None = None  # default from the dataset (see `aigc eval --help`)
    early_stopping: EarlyStoppingConfig | None = None
    progress: bool = True  # progress bar on a terminal, periodic lines otherwise
    tensorboard: bool = True  # also log to TensorBoard when it is installed
    init_from: str | None = None  # fine-tune: start from this run's (or zoo model's) weights, fresh optimizer
    allow_partial_init: bool = False  # init_from: keep fresh weights where names or shapes differ (new heads)
    freeze: list[str] = []  # fnmatch patterns over parameter names that get no updates, e.g. ["encoder.*"]
    lora: LoRAConfig | None = None  # train low-rank adapters instead of the weights (the base stays frozen)


def pick_device(preference: str, local_rank: int = 0, *, field: str = "device") -> "torch.device":
    """The device a `device` setting names: "auto" is this process's GPU when there is one, else the CPU;
    "cuda" is this process's GPU (`local_rank` under torchrun); anything else ("cpu", "cuda:1") as written.
    Training, loading and evaluation all read device settings through it."""
    import torch  # here, not at the top: reading and validating configs needs no torch

    if preference == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    if preference == "cuda" and torch.cuda.is_available():
        return torch.device(f"cuda:{local_rank}")
    try:
        device = torch.device(preference)
    except (RuntimeError, ValueError):
        raise ConfigError(f"{preference!r} is not a device", field=field, fix="use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":  # else the first tensor moved there fails with an assertion, far from the setting
        if not torch.cuda.is_available():
            why = "this torch build has no CUDA support" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise ConfigError(f"device {preference!r} was asked for, but {why}", field=field, fix="use device auto or cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"there is no {preference} (this machine has {torch.cuda.device_count()} GPUs)", field=field, fix="use cuda:0 .. cuda:N-1, or auto")
    return device


class RunConfig(BaseConfig):
    family: str
    model: SerializeAsAny[BaseConfig]
    data: DataConfig = DataConfig()
    optim: OptimConfig = OptimConfig()
    train: TrainConfig = TrainConfig()

    @field_validator("model", mode="before")
    @classmethod
    def _keep_family_config(cls, value: Any) -> Any:
        # `from_dict` builds the family's own config class; this only guards direct construction.
        if not isinstance(value, BaseConfig):
            raise ValueError("build RunConfig with RunConfig.from_dict so that [model] uses the family's config")
        return value

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "RunConfig":
        """Validate a plain dict (from TOML and overrides), with errors that name keys and choices."""
        from aigc.registry import get_model

        raw = dict(raw)
        raw.pop("extends", None)
        raw.pop("description", None)
        unknown = set(raw) - set(cls.model_fields)
        if unknown:
            raise ConfigError(
                f"unknown section {sorted(unknown)[0]!r}",
                field=sorted(unknown)[0],
                fix=f"valid top-level keys: {', '.join(cls.model_fields)}",
            )
        if "family" not in raw:
            raise ConfigError("missing", field="family", fix="name a model family, e.g. family = \"dcgan\"")
        spec = get_model(str(raw["family"]))
        model_raw = raw.get("model", {})
        model = _validate(spec.config_class, model_raw, prefix="model")
        rest = {k: v for k, v in raw.items() if k != "model"}
        sections = {
            name: _validate(kind, rest.get(name, {}), prefix=name)
            for name, kind in (("data", DataConfig), ("optim", OptimConfig), ("train", TrainConfig))
        }
        return cls(family=spec.name, model=model, **sections)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def replace(self, overrides: list[str]) -> "RunConfig":
        return RunConfig.from_dict(apply_overrides(self.to_dict(), overrides))


def _validate(kind: type[BaseConfig], raw: Any, *, prefix: str) -> BaseConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"expected a table of keys, got {raw!r}", field=prefix)
    try:
        return kind.model_validate(raw)
    except ValidationError as error:
        raise _explain(error, kind, prefix) from None


def _explain(error: ValidationError, kind: type[BaseConfig], prefix: str) -> ConfigError:
    """Turn pydantic's errors into one message that names each key and, for typos, the valid keys."""
    lines = []
    fix = None
    for item in error.errors():
        loc = [str(part) for part in item["loc"]]
        key = ".".join([prefix, *loc])
        if item["type"] == "extra_forbidden":
            valid = _valid_keys(kind, loc[:-1])
            lines.append(f"{key}: unknown key")
            fix = f"valid keys in {'.'.join([prefix, *loc[:-1]])}: {', '.join(valid)}"
        else:
            lines.append(f"{key}: {item['msg']} (got {item.get('input')!r})")
    return ConfigError("; ".join(lines), fix=fix)


def _valid_keys(kind: type[BaseModel], loc: list[str]) -> list[str]:
    for part in loc:
        annotation = kind.model_fields[part].annotation
        inner = [a for a in getattr(annotation, "__args__", (annotation,)) if isinstance(a, type)]
        kind = next(a for a in inner if issubclass(a, BaseModel))
    return list(kind.model_fields)


def parse_value(text: str) -> Any:
    """`--set` values are TOML literals (1e-4, true, [0.5, 0.99], "text"); anything else is a string."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `section.key=value` strings to a config dict; validation happens in `RunConfig.from_dict`."""
    raw = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"expected KEY=VALUE, got {item!r}", field="--set", fix="e.g. --set train.max_steps=500")
        *parents, leaf = key.split(".")
        node = raw
        for depth, part in enumerate(parents):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"{'.'.join(parents[: depth + 1])} is a value, not a section", field=key)
            node = child
        node[leaf] = parse_value(text.strip())
    return raw


def _preset_dir():
    return resources.files("aigc") / "presets"


def list_presets() -> list[str]:
    return sorted(p.name[: -len(".toml")] for p in _preset_dir().iterdir() if p.name.endswith(".toml"))


def read_preset_or_file(name_or_path: str) -> dict[str, Any]:
    """The raw dict of a preset name or a TOML file, with `extends` chains merged (child wins)."""
    path = Path(name_or_path)
    if name_or_path.endswith(".toml") or path.is_file():
        if not path.is_file():
            raise ConfigError(f"no such config file: {name_or_path}", fix="give a preset name (`aigc models list`) or an existing .toml file")
        text = path.read_text(encoding="utf-8")
    else:
        preset = _preset_dir() / f"{name_or_path}.toml"
        if not preset.is_file():
            raise ConfigError(
                f"unknown preset {name_or_path!r}",
                fix=f"use one of: {', '.join(list_presets())}, or a path to a .toml file",
            )
        text = preset.read_text(encoding="utf-8")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{name_or_path} is not valid TOML: {error}") from None
    if "extends" in raw:
        return _merge(read_preset_or_file(str(raw["extends"])), raw)
    return raw


def _merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    merged.pop("extends", None)
    return merged


def load_config(name_or_path: str, overrides: list[str] | None = None) -> RunConfig:
    """A preset name or a TOML path, plus overrides, validated into a RunConfig."""
    return RunConfig.from_dict(apply_overrides(read_preset_or_file(name_or_path), overrides or []))
