"""`aigc optimize RUN --out RUN-small ...`: the steps in a fixed order, written as an ordinary run folder.

    prune (magnitude or channels) -> low-rank factorisation -> separable convs -> fine-tune -> quantise -> save the checkpoint -> export -> report

RUN-small/checkpoints/step-N/ holds model.safetensors (the weights generation uses; training-only ones such as
a GAN's discriminator are left out, as a zoo export does) and checkpoint.json: the run's config, unchanged,
and `transforms`, the list of records that loading re-applies to the family's fresh build (each one
registered in `aigc.registry.TRANSFORMS`). So `aigc generate`, `aigc eval`, `aigc.load` and the studio use
the folder like any other run. Optimising an optimised run appends to its list.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w
import torch

from aigc import checkpoint as ckpt
from aigc.config import RunConfig, load_config
from aigc.errors import AigcError, ConfigError
from aigc.loading import LoadedModel, load
from aigc.optimize import low_rank, prune, quantize, separable
from aigc.optimize import report as reporting
from aigc.optimize.modules import training_only
from aigc.registry import get_model


@dataclass(frozen=True)
class Plan:
    """What to apply, in the pipeline's order; every field off by default."""

    prune: float | None = None  # fraction of weights (or, structured, of channels) to remove
    structured: bool = False  # remove whole conv channels instead of single weights
    scope: str = "global"  # magnitude pruning: rank weights across all layers ("global") or per layer
    prune_layers: tuple[tuple[str, float], ...] = ()  # structured: (chain path, amount) pairs that replace `prune` for those layers
    criterion: str = "l1"  # structured: rank channels by L1 filter norm ("l1") or by their BatchNorm's scale ("bn")
    low_rank: int | None = None  # SVD rank for Linear and Conv2d layers
    separable: bool = False  # k x k convolutions -> depthwise k x k + pointwise 1 x 1
    finetune: int = 0  # training steps after pruning or factorising, through the one loop
    finetune_overrides: tuple[str, ...] = ()  # section.key=value settings of the fine-tuning run (say optim.lr=1e-3)
    quantize: str | None = None  # "dynamic" or "static"
    calibrate: int = 8  # --quantize static: generation requests (seeds 0, 10000, ...) whose activations fix the int8 scales
    export: str | None = None  # "onnx"

    def check(self) -> None:
        if self.prune is not None:
            prune.check_amount(self.prune)
        if self.structured and self.prune is None:
            raise AigcError("--structured says how to prune, but no --prune amount was given", field="--structured", fix="add --prune 0.5")
        if self.prune_layers and not self.structured:
            raise AigcError("--prune-layer sets a layer's share of channels to remove; it needs --structured", field="--prune-layer",
                            fix="add --structured, or leave --prune-layer out")
        if self.low_rank is not None:
            low_rank.check_rank(self.low_rank)
            if self.prune is not None and not self.structured:
                raise AigcError("--low-rank replaces the layers whose zeros --prune would keep", field="--low-rank",
                                fix="use --prune with --structured, or factorise in a separate run")
        if self.separable and self.prune is not None and not self.structured:
            raise AigcError("--separable replaces the layers whose zeros --prune would keep", field="--separable",
                            fix="use --prune with --structured, or make the convs separable in a separate run")
        if self.finetune and self.prune is None and self.low_rank is None and not self.separable:
            raise AigcError("--finetune recovers what pruning or factorising lost; nothing was changed", field="--finetune",
                            fix="add --prune 0.5 or --low-rank 16, or leave --finetune out")
        if self.criterion != "l1" and not self.structured:
            raise AigcError("--criterion says how to rank channels; it needs --structured", field="--criterion", fix="add --structured, or leave --criterion out")
        if self.finetune_overrides and not self.finetune:
            raise AigcError("--set changes the fine-tuning run's settings, but no --finetune steps were asked for", field="--set",
                            fix="add --finetune 1000, or leave --set out")
        if self.finetune < 0:
            raise AigcError(f"--finetune takes a number of steps >= 0, got {self.finetune}", field="--finetune")
        if self.quantize not in (None, "dynamic", "static"):
            fix = "use --quantize dynamic (int8 Linear layers) or --quantize static (int8 activations too, for conv networks)"
            raise AigcError(f"unknown quantisation {self.quantize!r}", field="--quantize", fix=fix)
        if self.quantize == "static" and self.calibrate < 1:
            raise AigcError(f"--calibrate takes a number of generation requests >= 1, got {self.calibrate}", field="--calibrate", fix="e.g. --calibrate 8")
        if self.export not in (None, "onnx"):
            raise AigcError(f"unknown export format {self.export!r}", field="--export", fix="use --export onnx")
        if self.export and self.quantize:
            raise AigcError("an int8 network has no ONNX export here (its quantized:: kernels have no ONNX form)", field="--export",
                            fix="export the float model in one run (--export onnx) and quantise in another")
        if not any((self.prune, self.low_rank, self.separable, self.quantize, self.export)):
            raise AigcError("nothing to do: no optimisation was asked for", field="aigc optimize",
                            fix="add --quantize dynamic|static, --prune 0.5 [--structured], --low-rank R [--finetune N] or --export onnx")


@dataclass
class Result:
    out: Path
    checkpoint: Path
    transforms: list[dict[str, Any]]
    report: dict[str, Any] | None
    written: list[Path]


def generation_state(module: torch.nn.Module) -> tuple[dict[str, torch.Tensor], list[str]]:
    """(the state dict generation needs, the key prefixes left out): training-only weights and the second
    name of tied weights (the model ties them again when it is built)."""
    skip = training_only(module)
    state, left_out, seen = {}, list(skip), set()
    for name, tensor in module.state_dict().items():
        if name.startswith(skip):
            continue
        if tensor.data_ptr() in seen and tensor.numel() > 0:
            left_out.append(name)
            continue
        seen.add(tensor.data_ptr())
        state[name] = tensor
    return state, left_out


def save_run(out: Path, source: LoadedModel, module: torch.nn.Module, transforms: list[dict[str, Any]], *,
             config: RunConfig | None = None, extra: dict[str, Any] | None = None, step: int | None = None) -> Path:
    """OUT/checkpoints/step-N with `module`'s generation weights; `config`: a distilled student's own config."""
    info = source.info
    config = config or info.config
    state, left_out = generation_state(module)
    step = int(info.step or 0) if step is None else step
    sidecar = {
        "family": config.family,
        "modality": get_model(config.family).modality,
        "step": step,
        "config": config.to_dict(),
        "metrics": info.sidecar.get("metrics", {}),
        "data": info.sidecar.get("data", {}),
        "transforms": transforms,
        "left_out": left_out,
        "optimized_from": {"model": info.model_name, "checkpoint": str(info.checkpoint), "weights": info.weights,
                           "sha256": info.sidecar["files"][f"{info.weights}.safetensors"]},
        **(extra or {}),
    }
    folder = ckpt.save_checkpoint(out / "checkpoints" / f"step-{step:07d}", weights={"model": state}, training_state=None, sidecar=sidecar)
    (out / "config.toml").write_text(tomli_w.dumps(_without_none(config.to_dict())), encoding="utf-8")
    return folder


CALIBRATION_SEED_STRIDE = 10_000  # request i starts at seed i * stride: its samples (seed + j) overlap no other request's


def calibration(module: torch.nn.Module, requests: int, source: str):
    """--quantize static: a function that runs `requests` of the family's preview request (seeds 0, 10000, ...)
    through `module`, so that the observers see the activations generation produces (a U-Net at every
    sampler step, a generator on its noise) rather than training inputs."""
    if not hasattr(module, "preview_request"):
        raise AigcError(f"{source} makes no request of its own to calibrate on (it transforms given inputs)",
                        field="--quantize", fix="use --quantize dynamic, or --export onnx")
    request = module.preview_request()

    def run() -> None:
        module.eval()
        for seed in range(requests):
            module.generate(request.model_copy(update={"seed": seed * CALIBRATION_SEED_STRIDE}))  # no sample seen twice

    return run


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    return value


def optimize(source: str | Path, out: str | Path, plan: Plan, *, settings: reporting.Settings = reporting.Settings(),
             measure: bool = True, measure_quality: bool = True, force: bool = False) -> Result:
    """Apply `plan` to the run (or zoo model) `source` and write the optimised run folder `out`."""
    plan.check()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file, not a folder", field="--out", fix="choose a new folder for the optimised run")
    if (out / "checkpoints").exists():
        if not force:
            raise ConfigError(f"{out} already holds a run", field="--out", fix="choose another --out, or add --force to replace it")
        shutil.rmtree(out / "checkpoints")
    original = load(source)
    module = load(source).module  # a second copy, changed in place; `original` stays as it was for the report
    transforms = list(original.info.sidecar.get("transforms", []))
    if any(t["name"] in (quantize.NAME, quantize.STATIC_NAME) for t in transforms) and (plan.prune or plan.quantize or plan.low_rank or plan.separable):
        raise AigcError(f"{source} is already quantised: int8 weights cannot be pruned or quantised again",
                        field="RUN", fix="optimise the float run it came from")
    masks = None
    if plan.prune is not None:
        if plan.structured:
            transforms.append(prune.prune_channels(module, plan.prune, dict(plan.prune_layers), plan.criterion))
        else:
            masks, record = prune.prune_magnitude(module, plan.prune, plan.scope)
            transforms.append(record)
    if plan.low_rank is not None:
        transforms.append(low_rank.factorize(module, plan.low_rank))
    if plan.separable:
        transforms.append(separable.make_separable(module))
    if plan.finetune:
        from aigc.optimize.finetune import finetune  # the training side, only when asked for

        module, record = finetune(module, original.info.config, plan.finetune, out / "finetune", masks=masks, teacher=original.module,
                                  overrides=list(plan.finetune_overrides))
        transforms[-1]["finetune"] = record
    if plan.quantize == "dynamic":
        transforms.append(quantize.quantize_dynamic(module))
    elif plan.quantize == "static":
        record = quantize.quantize_static(module, calibration(module, plan.calibrate, str(source)))
        transforms.append({**record, "calibration": f"{plan.calibrate} generation request(s) of the family's preview request, seeds 0, {CALIBRATION_SEED_STRIDE}, ..."})
    checkpoint = save_run(out, original, module, transforms)
    optimized = load(out)
    written = [checkpoint]
    exported = None
    if plan.export == "onnx":
        from aigc.optimize.export import export_onnx, with_onnxruntime

        written += export_onnx(optimized, out / "onnx")
        exported = with_onnxruntime(load(out))
    result_report = None
    if measure:
        result_report = reporting.compare(original, optimized, settings, measure_quality=measure_quality, onnxruntime=exported)
        written += reporting.write(result_report, out)
    return Result(out, checkpoint, transforms, result_report, written)


# ------------------------------------------------------------------------------------------ distillation

# What a student must share with its teacher to learn from it: the tokenizer (the same token ids) for a
# language model; the noise, classes and image geometry for a GAN generator.
SHARED_FIELDS = {
    "text": ("tokenizer_kind", "max_vocab", "tokenizer", "vocab_size"),
    "image": ("image_size", "channels", "latent_dim", "conditional", "num_classes", "label_embedding_dim"),
}


def student_config(teacher: LoadedModel, preset: str, overrides: list[str]) -> RunConfig:
    """The student preset (+ overrides) with what it must share with the teacher, on the teacher's data."""
    config = load_config(preset, overrides)
    theirs, ours = get_model(teacher.info.family).modality, get_model(config.family).modality
    if theirs != ours:
        raise AigcError(f"the student preset {preset!r} makes {ours} ({config.family}); the teacher makes {theirs} ({teacher.info.family})",
                        field="--distill", fix=f"choose a {theirs} preset (`aigc models list`), e.g. {teacher.info.config.family}-tiny")
    raw = config.to_dict()
    teacher_model = teacher.info.config.model.model_dump()
    for key in SHARED_FIELDS.get(ours, ()):
        if key in raw["model"] and key in teacher_model:
            raw["model"][key] = teacher_model[key]
    if ours == "text" and "context_length" in raw["model"]:
        raw["model"]["context_length"] = min(raw["model"]["context_length"], teacher_model.get("context_length", 10**9))
    raw["data"] = teacher.info.config.data.model_dump()
    return RunConfig.from_dict(raw)


def distill(source: str | Path, out: str | Path, preset: str, steps: int, *, overrides: list[str] | None = None,
            settings: reporting.Settings = reporting.Settings(), measure: bool = True, measure_quality: bool = True,
            force: bool = False, student_init: str = "random", temperature: float = 2.0, alpha: float = 0.5) -> Result:
    """`aigc optimize RUN --out RUN-small --distill PRESET --steps N`: a smaller network of PRESET (a GPT
    from the teacher's softened logits and the data; a GAN generator from the teacher's images), trained
    through the one loop and written as an ordinary run of its own architecture, with the report.
    `student_init`: "random" (the preset's initialisation) or "teacher" (a GPT student starts from the
    teacher's embeddings and some of its blocks, `distill.init_from_teacher`); `temperature`, `alpha`: the
    language-model objective's T and soft-term weight (`distill.LogitDistillation`)."""
    from aigc.loading import build_model
    from aigc.optimize.distill import LogitDistillation, OutputMatching, can_match_outputs, init_from_teacher
    from aigc.optimize.finetune import finetune_config
    from aigc.training.callbacks import EMA, default_callbacks
    from aigc.training.loop import fit

    if steps < 1:
        raise AigcError(f"--distill needs --steps >= 1, got {steps}", field="--steps", fix="e.g. --steps 1000")
    if student_init not in ("random", "teacher"):
        raise AigcError(f"unknown student initialisation {student_init!r}", field="--student-init",
                        fix="use --student-init random (the preset's own) or teacher (a GPT student starts from the teacher's blocks)")
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise AigcError(f"--temperature must be a number > 0, got {temperature}", field="--temperature", fix="e.g. --temperature 2")
    if not (isinstance(alpha, (int, float)) and 0 <= alpha <= 1):
        raise AigcError(f"--alpha weighs the soft term against the hard one and lies in [0, 1], got {alpha}", field="--alpha", fix="e.g. --alpha 0.5")
    out = Path(out)
    if (out / "checkpoints").exists():
        if not force:
            raise ConfigError(f"{out} already holds a run", field="--out", fix="choose another --out, or add --force to replace it")
        shutil.rmtree(out / "checkpoints")
    teacher = load(source)
    config = finetune_config(student_config(teacher, preset, list(overrides or [])), steps)
    torch.manual_seed(config.train.seed)
    student = build_model(config)
    from aigc.models.text.common import LanguageModel

    initialised = init_from_teacher(student, teacher.module) if student_init == "teacher" else {"init": "random"}
    if isinstance(student, LanguageModel) and isinstance(teacher.module, LanguageModel):
        trained = LogitDistillation(student, teacher.module, temperature=temperature, alpha=alpha)
        objective = f"KL on logits softened by T={temperature:g} (x T^2) + cross-entropy, alpha {alpha:g}"
    elif can_match_outputs(student) and can_match_outputs(teacher.module):
        trained, objective = OutputMatching(student, teacher.module), "mean squared difference to the teacher's images from the same noise"
    else:
        raise AigcError(f"no distillation from {teacher.info.family} into {config.family} yet: language models and noise-driven GAN generators only",
                        field="--distill", fix="distil a GPT/RNN language model or a GAN generator")
    callbacks = default_callbacks(config, out / "distill")
    result = fit(config, out / "distill", callbacks=callbacks, model=trained)
    shutil.rmtree(out / "distill" / "checkpoints", ignore_errors=True)
    ema = next((c for c in callbacks if isinstance(c, EMA) and c.averaged is not None), None)
    final = (ema.averaged if ema is not None else trained).student.eval()
    record = {"teacher": teacher.info.model_name, "preset": preset, "overrides": list(overrides or []), "steps": result.step,
              "objective": objective, **initialised, "metrics": {k: round(v, 5) for k, v in result.metrics.items()}}
    checkpoint = save_run(out, teacher, final, [], config=config, extra={"distilled_from": record}, step=result.step)
    written = [checkpoint]
    report = None
    if measure:
        report = reporting.compare(teacher, load(out), settings, measure_quality=measure_quality)
        written += reporting.write(report, out)
    return Result(out, checkpoint, [], report, written)
