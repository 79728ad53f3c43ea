"""The evaluation report: what `aigc eval` writes (RUN/eval.json), reads back, prints and compares.

    report.to_dict()                 the eval.json document: subject, scores, protocol record, timing, warnings
    compare_runs([RUN_A, RUN_B])     a markdown table of several runs' eval.json; refuses when their
                                     protocols differ, and says what differs
    summary_lines(report)            the protocol in a few lines, for terminals
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from aigc.errors import AigcError
from aigc.files import atomic_write_text
from aigc.metrics.protocol import METRICS

EVAL_FILE = "eval.json"
EVAL_GRID = "eval-samples.png"
EVAL_FORMAT = "aigc-eval"


@dataclass
class EvalReport:
    scores: dict[str, dict[str, Any]]  # metric -> label and numbers
    protocol: dict[str, Any]  # everything the numbers depend on, apart from the model
    subject: dict[str, Any]  # what was scored: a run (path, checkpoint, step, weights) or a data split
    timing: dict[str, float]
    warnings: list[str] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)  # files evaluate_run wrote (eval.json, eval-samples.png)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": EVAL_FORMAT,
            "format_version": 1,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "subject": self.subject,
            "scores": self.scores,
            "protocol": self.protocol,
            "timing": self.timing,
            "warnings": self.warnings,
        }


def format_score(metric: str, score: dict[str, Any]) -> str:
    if metric == "fid":
        return f"{score['value']:.4g}"
    if metric in ("kid", "is"):
        return f"{score['mean']:.4g} ± {score['std']:.2g}"
    return "  ".join(f"{name} {score[name]:.3f}" for name in ("precision", "recall", "density", "coverage"))


# ---------------------------------------------------------------------------------------------------------
# Comparing runs


def read_eval(path: str | Path) -> tuple[dict[str, Any], Path]:
    """(the eval.json document, its path) of a run folder, a checkpoint inside one, or the file itself."""
    path = Path(path)
    candidates = [path] if path.is_file() else [path / EVAL_FILE]
    if path.is_dir() and path.parent.name == "checkpoints":
        candidates.append(path.parent.parent / EVAL_FILE)
    for candidate in candidates:
        if candidate.is_file():
            try:
                document = json.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as error:
                raise AigcError(f"cannot read {candidate}: {error}", field="RUN", fix="evaluate the run again") from None
            if document.get("format") != EVAL_FORMAT:
                raise AigcError(f"{candidate} is not an aigc eval.json", field="RUN", fix="evaluate the run again")
            return document, candidate
    if not path.exists():
        raise AigcError(f"{path} does not exist", field="RUN", fix="give run folders that `aigc eval` has scored")
    raise AigcError(
        f"{path} has no {EVAL_FILE}",
        field="RUN",
        fix=f"score it first with the same settings as the others: aigc eval {path} --metrics ...",
    )


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}


# Protocol entries that describe rather than define: a network is defined by its weights' sha256, a dataset
# by its fingerprint (not where the files sit), and class-balanced sampling of a conditional model is how
# that model is sampled, so a cgan and a dcgan stay comparable.
DESCRIPTIVE_KEYS = ("reference.path", "feature_network.weights_source", "sampling")


def protocol_differences(protocols: Sequence[dict[str, Any]], names: Sequence[str]) -> list[str]:
    """Human-readable differences between protocols; settings of metrics that not every run has, and the
    descriptive entries (`DESCRIPTIVE_KEYS`), are ignored."""
    shared_metrics = set.intersection(*(set(p.get("metric_settings", {})) for p in protocols))
    flats = []
    for protocol in protocols:
        trimmed = dict(protocol, metric_settings={m: s for m, s in protocol.get("metric_settings", {}).items() if m in shared_metrics})
        flats.append(_flatten(trimmed))
    keys = sorted(set().union(*flats) - set(DESCRIPTIVE_KEYS))
    differences = []
    for key in keys:
        values = [flat.get(key) for flat in flats]
        if any(value != values[0] for value in values):
            differences.append(f"{key}: " + ", ".join(f"{value!r} ({name})" for value, name in zip(values, names)))
    return differences


def compare_runs(paths: Sequence[str | Path], out: str | Path = "comparison.md") -> Path:
    """A markdown report of several runs' eval.json: one table, sample grids, the shared protocol.
    Refuses (AigcError) unless every run was scored with the same protocol, and says what differs."""
    if len(paths) < 2:
        raise AigcError(f"--compare needs at least two runs, got {len(paths)}", field="RUN", fix="aigc eval --compare RUN_A RUN_B ...")
    documents = [read_eval(path) for path in paths]
    names = [_run_name(document, path) for document, path in documents]
    differences = protocol_differences([document["protocol"] for document, _ in documents], names)
    if differences:
        raise AigcError(
            "these runs were scored with different protocols, so their numbers are not comparable:\n    "
            + "\n    ".join(differences),
            field="--compare",
            fix="score every run again with the same settings: aigc eval RUN -n N --seed S --metrics ... "
            "--feature-network NAME --reference-split SPLIT",
        )
    out = Path(out)
    metrics = [m for m in METRICS if any(m in document["scores"] for document, _ in documents)]
    first = documents[0][0]
    header = ["run", "family", "step"]
    for metric in metrics:
        label = next(document["scores"][metric]["label"] for document, _ in documents if metric in document["scores"])
        header += [f"{label} ↓"] if metric in ("fid", "kid") else [f"{label} ↑"] if metric == "is" else ["precision ↑", "recall ↑", "density ↑", "coverage ↑"]
    header.append("samples")
    lines = ["# Evaluation comparison", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (document, path), name in zip(documents, names):
        subject = document.get("subject", {})
        row = [name, str(subject.get("family", "-")), str(subject.get("step", "-"))]
        for metric in metrics:
            score = document["scores"].get(metric)
            if metric == "prdc":
                row += [f"{score[k]:.3f}" if score else "–" for k in ("precision", "recall", "density", "coverage")]
            else:
                row.append(format_score(metric, score) if score else "–")
        row.append(" ".join(_grid_links(path.parent, out)) or "–")
        lines.append("| " + " | ".join(row) + " |")
    protocol = first["protocol"]
    network = protocol["feature_network"]
    reference = protocol["reference"]
    lines += [
        "",
        "Lower is better for ↓, higher for ↑. Every run was scored with the same protocol:",
        "",
        f"- samples: {protocol['sample_count']} {protocol['candidate']} images, seed {protocol['seed']} ({protocol['sampling']})",
        f"- reference: {reference['count']} images of the {reference['split']} split of `{reference['dataset']}` "
        f"({reference['subset']}; fingerprint `{reference['split_fingerprint'][:16]}…`)",
        f"- feature network: `{network['name']}` (weights sha256 `{network['weights_sha256'][:16]}…`, {network['weights_source']}); "
        f"input {network['input']}",
        f"- resize: {protocol['resize']}",
    ]
    for metric, values in protocol.get("metric_settings", {}).items():
        if values:
            lines.append(f"- {metric}: " + ", ".join(f"{k} {v}" for k, v in values.items()))
    if not network["name"] == "inception-v3":
        lines += ["", f"Scores use `{network['name']}` features, so they are not comparable with published FID/KID/IS (Inception-v3)."]
    atomic_write_text(out, "\n".join(lines) + "\n")
    return out


def _run_name(document: dict[str, Any], path: Path) -> str:
    run = document.get("subject", {}).get("run")
    return Path(run).name if run else path.parent.name


def _grid_links(run_dir: Path, report: Path) -> list[str]:
    """Markdown links, relative to the report, to the evaluated samples and the last training grid."""
    links = []
    base = report.resolve().parent
    if (run_dir / EVAL_GRID).is_file():
        links.append(f"[eval samples]({os.path.relpath((run_dir / EVAL_GRID).resolve(), base)})")
    grids = sorted((run_dir / "samples").glob("step-*.png"))
    if grids:
        links.append(f"[training grid]({os.path.relpath(grids[-1].resolve(), base)})")
    return links


def summary_lines(report: EvalReport) -> list[str]:
    """The protocol in a few lines, for terminals."""
    protocol, network, reference = report.protocol, report.protocol["feature_network"], report.protocol["reference"]
    return [
        f"samples: {protocol['sample_count']} {protocol['candidate']} (seed {protocol['seed']}; {protocol['sampling']})",
        f"reference: {reference['count']} {reference['split']} images of {reference['dataset']} ({reference['subset']})",
        f"feature network: {network['name']} (sha256 {network['weights_sha256'][:16]}…), input {network['input']}",
        f"resize: {protocol['resize']}",
        *(f"warning: {text}" for text in report.warnings),
    ]
