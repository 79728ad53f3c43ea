"""What an optimisation cost and gained, measured against the original in the same process.

For each model: parameters (and how many are non-zero), the weights file's size, generation latency (the
same request, the same thread count, the two models timed in alternation so that a busy machine slows both
alike; the median of the repeats) and quality — FD on the dataset's feature network (`aigc.metrics`,
a small sample count, the same seeds for both) for image models, validation nats per character over
the whole validation split for language models. Written as RUN-small/optimize.json and optimize.md.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from aigc.errors import AigcError
from aigc.files import atomic_write_text
from aigc.loading import LoadedModel, load
from aigc.registry import get_model

REPORT_JSON = "optimize.json"
REPORT_MD = "optimize.md"


@dataclass(frozen=True)
class Settings:
    """How the two models are measured; recorded in the report."""

    repeats: int = 5  # timed generations per model (after one warm-up each)
    threads: int | None = None  # torch threads for the timings (None: as the process has them)
    images: int = 16  # images per timed request
    tokens: int = 64  # new tokens per timed text request
    quality_samples: int = 500  # generated images for FD (both models, the same seeds)
    feature_network: str | None = None  # FD's feature network (None: the dataset's default, see `aigc eval --help`)


def parameter_counts(module: torch.nn.Module) -> dict[str, int]:
    """Weights generation uses: parameters and int8 weight tensors, outside the training-only parts."""
    from aigc.optimize.modules import training_only

    skip = training_only(module)
    values = [t for name, t in module.state_dict(keep_vars=False).items()
              if not name.startswith(skip) and (t.is_floating_point() or t.dtype == torch.int8) and not name.endswith(("running_mean", "running_var", "weight_scale", "activation_scales"))]
    unique = {t.data_ptr(): t for t in values}.values()  # tied weights count once
    return {"parameters": sum(t.numel() for t in unique), "nonzero": sum(int(t.count_nonzero()) for t in unique),
            "memory_bytes": sum(t.numel() * t.element_size() for t in unique)}  # as loaded: float32 4 bytes, int8 1


def weights_bytes(model: LoadedModel) -> int:
    return (model.info.checkpoint / f"{model.info.weights}.safetensors").stat().st_size


def timing_request(model: LoadedModel, settings: Settings) -> Any:
    """The family's preview request, made small; None for families that make none (style networks take images)."""
    if not hasattr(model.module, "preview_request"):
        return None
    request = model.module.preview_request()
    if get_model(model.info.family).modality == "text":
        return request.model_copy(update={"max_tokens": settings.tokens, "min_tokens": settings.tokens, "count": 1})
    return request.model_copy(update={"count": min(settings.images, request.count)}) if hasattr(request, "count") else request


def latencies(models: list[LoadedModel], settings: Settings) -> list[float | None]:
    """Median seconds per generation of the same request, the models timed in alternation (None: no request)."""
    previous = torch.get_num_threads()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    try:
        requests = [timing_request(m, settings) for m in models]
        if any(r is None for r in requests):
            return [None for _ in models]
        for model, request in zip(models, requests):
            model.generate(request)  # warm-up: first calls pack weights, allocate, pick kernels
        times: list[list[float]] = [[] for _ in models]
        for _ in range(settings.repeats):
            for index, (model, request) in enumerate(zip(models, requests)):
                started = time.perf_counter()
                model.generate(request)
                times[index].append(time.perf_counter() - started)
        return [statistics.median(t) for t in times]
    finally:
        torch.set_num_threads(previous)


def quality(model: LoadedModel, settings: Settings) -> dict[str, Any]:
    """FD for images, validation nats/char for language models; lower is better for both."""
    modality = get_model(model.info.family).modality
    config = model.info.config
    if modality == "text" and hasattr(model.module, "training_step"):
        from aigc.data import load_dataset
        from aigc.models.text.common import evaluate_split

        data = load_dataset(config.data, config.model)
        if data.val is None or len(data.val) == 0:
            return {"metric": "val nats/char", "value": None, "why": "the run has no validation split"}
        scores = evaluate_split(model.module, data.val)
        return {"metric": "val nats/char", "value": round(scores["nats_per_char"], 5), "tokens": scores["tokens"]}
    if modality == "image":
        from aigc.metrics.evaluate import evaluate_model
        from aigc.metrics.protocol import Protocol

        protocol = Protocol(metrics=("fid",), num_samples=settings.quality_samples, seed=0, feature_network=settings.feature_network)
        try:
            report, _ = evaluate_model(model, config, protocol)
        except AigcError as error:  # no feature network for this data: the size and speed still count
            return {"metric": "FD", "value": None, "why": str(error)}
        score = report.scores["fid"]
        return {"metric": score.get("label", "FD"), "value": round(float(score["value"]), 4), "samples": settings.quality_samples,
                "feature_network": report.protocol.get("feature_network", {})}
    return {"metric": "-", "value": None, "why": f"no quality score for {modality} models yet"}


def float_layers(model: LoadedModel) -> dict[str, str]:
    """Layers a quantisation left in float32 -> why (the static record says why; the dynamic one lists them)."""
    kept: dict[str, str] = {}
    for record in model.info.sidecar.get("transforms", []):
        layers = record.get("float_layers") or {}
        kept.update(layers if isinstance(layers, dict) else {path: "no dynamic int8 kernel" for path in layers})
    return kept


def describe(model: LoadedModel) -> dict[str, Any]:
    return {"model": model.info.model_name, "checkpoint": str(model.info.checkpoint), "float_layers": float_layers(model),
            "transforms": [t["name"] for t in model.info.sidecar.get("transforms", [])]
            + ([f"distilled from {model.info.sidecar['distilled_from']['teacher']}"] if "distilled_from" in model.info.sidecar else []),
            **parameter_counts(model.module), "file_bytes": weights_bytes(model)}


def compare(original: LoadedModel, optimized: LoadedModel, settings: Settings = Settings(), *, measure_quality: bool = True,
            onnxruntime: LoadedModel | None = None) -> dict[str, Any]:
    """The report's numbers: both models described, timed together and scored; with `onnxruntime` (the
    optimised run generating through its ONNX export), its latency is timed in the same alternation."""
    rows = {"original": describe(original), "optimized": describe(optimized)}
    models = [original, optimized] + ([onnxruntime] if onnxruntime is not None else [])
    times = latencies(models, settings)
    for key, seconds in zip(rows, times):
        rows[key]["latency_s"] = None if seconds is None else round(seconds, 5)
    if onnxruntime is not None:
        onnx_file = onnxruntime.info.checkpoint.parent.parent / "onnx" / "model.onnx"
        rows["onnxruntime"] = {**rows["optimized"], "model": f"{optimized.info.model_name} (onnxruntime)",
                               "file_bytes": onnx_file.stat().st_size, "latency_s": round(times[2], 5)}
    if measure_quality:
        for key, model in (("original", original), ("optimized", optimized)):
            rows[key]["quality"] = quality(model, settings)
    first, second = rows["original"], rows["optimized"]
    ratios = {
        "parameters": round(first["parameters"] / max(second["parameters"], 1), 3),
        "file_bytes": round(first["file_bytes"] / max(second["file_bytes"], 1), 3),
        "memory_bytes": round(first["memory_bytes"] / max(second["memory_bytes"], 1), 3),
        "speedup": None if first["latency_s"] is None else round(first["latency_s"] / max(second["latency_s"], 1e-12), 3),
    }
    if "onnxruntime" in rows:
        ratios["speedup_onnxruntime"] = round(first["latency_s"] / max(rows["onnxruntime"]["latency_s"], 1e-12), 3)
    a, b = first.get("quality", {}).get("value"), second.get("quality", {}).get("value")
    if a is not None and b is not None:
        ratios["quality_delta"] = round(b - a, 5)
        ratios["quality_delta_percent"] = round(100 * (b - a) / a, 2) if a else None
    return {
        "format": "aigc-optimize-report", "format_version": 1, **rows, "ratios": ratios,
        "settings": {**settings.__dict__, "threads": settings.threads or torch.get_num_threads(),
                     "request": None if timing_request(original, settings) is None else timing_request(original, settings).model_dump(mode="json")},
        "machine": f"torch {torch.__version__}, {torch.backends.quantized.engine} quantized engine",
    }


def markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown table (one row per model, then the ratios)."""
    lines = ["| model | transforms | parameters (non-zero) | weights in memory | file | latency | quality |", "|---|---|---|---|---|---|---|"]
    for key in ("original", "optimized", "onnxruntime"):
        if key not in report:
            continue
        row = report[key]
        score = row.get("quality", {})
        shown = "-" if score.get("value") is None else f"{score['metric']} {score['value']}"
        lines.append(
            f"| {key}: {row['model']} | {', '.join(row['transforms']) or '-'} | {row['parameters']:,} ({row['nonzero']:,}) "
            f"| {row['memory_bytes'] / 1e6:.3f} MB | {row['file_bytes'] / 1e6:.3f} MB | {_ms(row['latency_s'])} | {shown} |"
        )
    ratios = report["ratios"]
    delta = "" if "quality_delta" not in ratios else f", quality {ratios['quality_delta']:+} ({ratios['quality_delta_percent']:+}%)"
    settings = report["settings"]
    onnx = f" (onnxruntime {ratios['speedup_onnxruntime']}x)" if "speedup_onnxruntime" in ratios else ""
    kept = report["optimized"].get("float_layers") or {}
    if kept:
        lines += ["", f"Left in float32 by the quantisation ({len(kept)}): " + "; ".join(f"{path} ({why})" for path, why in kept.items()) + "."]
    lines += ["", f"Ratios (original / optimised): parameters {ratios['parameters']}x, weights in memory {ratios['memory_bytes']}x, file {ratios['file_bytes']}x, "
              f"speed {ratios['speedup']}x{onnx}{delta}. Latency: median of {settings['repeats']} generations of the same request "
              f"at {settings['threads']} thread(s), the two models alternating; {report['machine']}."]
    return "\n".join(lines) + "\n"


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.1f} ms"


def write(report: dict[str, Any], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / REPORT_JSON, json.dumps(report, indent=2) + "\n")
    atomic_write_text(folder / REPORT_MD, markdown(report))
    return [folder / REPORT_JSON, folder / REPORT_MD]


def compare_runs(first: str | Path, second: str | Path, settings: Settings = Settings(), *, measure_quality: bool = True) -> dict[str, Any]:
    """`aigc optimize --report-only A B`: the same report for any two runs of one family."""
    a, b = load(first), load(second)
    if a.info.family != b.info.family:
        raise AigcError(f"{first} is a {a.info.family} model and {second} a {b.info.family} model: only runs of one family compare",
                        field="--report-only", fix="compare an optimised run with the run it came from")
    return compare(a, b, settings, measure_quality=measure_quality)
