"""Output checks: does a generated artifact copy its training data? (the privacy and copyright risk of
memorisation). They run after generation, behind the same policy hook as the watermarks
(`GenerationPolicy.after`), so the CLI, the Python API and the studio apply them alike.

    checks = OutputChecks([NearestTrainingImage(), TrainingTextOverlap()], action="warn")
    artifact = model.generate(request, policy=GenerationPolicy(after=(checks,)))
    artifact.parameters.get("output_checks")   # [{"check": "near_copy_image", "index": 0, "score": 0.0, ...}]

A checker is any object with a `name` and `check(artifact, info) -> list[OutputFinding]` (the interface for
further checkers). Both built-in ones compare against the split the run trained on, read again from the
run's own data settings (`info.config.data`) and held per process in an index keyed by its fingerprint:

    near_copy_image  the nearest training image by RMS pixel distance (0..1 per pixel); flagged at or
                     below `max_distance` (default 0.04: a copy, even re-encoded or lightly watermarked;
                     distinct MNIST digits are 0.1 or more apart)
    near_copy_text   the share of the generated text's characters inside a run of `ngram` (default 32)
                     characters that occurs verbatim in the training text; flagged at or above
                     `max_overlap` (default 0.5)

A flagged artifact is returned with the findings in `parameters["output_checks"]` (so every file it writes
records them) and a warning, or refused with an OutputRefused error under `action="block"`. A run whose
training data is not here (not installed, a folder that moved) is not checked; a warning says so.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from aigc.errors import AigcError, AigcWarning

ACTIONS = ("warn", "block")


@dataclass(frozen=True)
class OutputFinding:
    check: str  # the checker's name: near_copy_image, near_copy_text, ...
    index: int  # which image or text of the artifact
    score: float  # the checker's statistic (a distance, or an overlap share)
    threshold: float  # where it flags
    evidence: str  # what it matched: "training image 1234", or the copied passage
    action: str = "warn"  # what the policy does about it: warn | block

    def explain(self) -> str:
        return f"{self.check} (output {self.index}): {self.evidence} (score {self.score:.3f}, threshold {self.threshold:.3f})"


class OutputChecker(Protocol):
    name: str

    def check(self, artifact: Any, info: Any) -> list[OutputFinding]: ...


class OutputRefused(AigcError):
    """A generated output the policy blocks: it copies its training data."""

    def __init__(self, findings: list[OutputFinding]):
        self.findings = findings
        super().__init__("refused by the output checks: " + "; ".join(f.explain() for f in findings), field="output",
                         fix="try another seed or prompt; set AIGC_OUTPUT_CHECKS=warn to keep such outputs with a warning")


@dataclass
class OutputChecks:
    """The artifact hook (`GenerationPolicy.after`) that runs the checkers and flags or refuses."""

    checkers: list[Any]
    action: str = "warn"  # warn: flag in the result; block: raise OutputRefused

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise AigcError(f"unknown output check action {self.action!r}", field="AIGC_OUTPUT_CHECKS", fix="use off, warn or block")

    def __call__(self, artifact: Any, request: Any, info: Any) -> Any:
        findings = [dataclasses.replace(f, action=self.action) for checker in self.checkers for f in checker.check(artifact, info)]
        if not findings:
            return artifact
        if self.action == "block":
            raise OutputRefused(findings)
        warnings.warn(AigcWarning("output checks: " + "; ".join(f.explain() for f in findings)), stacklevel=2)
        return dataclasses.replace(artifact, parameters={**artifact.parameters, "output_checks": [asdict(f) for f in findings]})


# ------------------------------------------------------------------------------------------ training data


def _data_key(info: Any) -> str | None:
    """Names the data a run trained on: its data settings, and the model settings that decide them."""
    config = getattr(info, "config", None)
    if config is None:
        return None
    return config.data.model_dump_json() + "|" + type(config.model).__name__ + "|" + config.model.model_dump_json()


_CACHE: dict[tuple, Any] = {}  # the last few training splits and indexes, per process


def _cached(key: tuple, make) -> Any:
    if key not in _CACHE:
        if len(_CACHE) >= 8:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = make()
    return _CACHE[key]


def training_split(info: Any) -> Any:
    """The training split of the run `info` describes (read once per process), or None when unavailable."""
    key = _data_key(info)
    if key is None:
        return None
    try:
        from aigc.data import load_dataset

        return _cached(("split", key), lambda: load_dataset(info.config.data, info.config.model).train)
    except AigcError as error:
        warnings.warn(AigcWarning(f"output checks skipped: the training data of {getattr(info, 'model_name', 'this run')} is not here ({str(error).splitlines()[0]})"), stacklevel=3)
        return None


# ------------------------------------------------------------------------------------------ images


class ImageIndex:
    """Training images as unit floats [N, D] for nearest-neighbour search by RMS distance."""

    def __init__(self, images: np.ndarray):  # uint8 [N, H, W, C] or [N, C, H, W] flattened the same way as the queries
        self.vectors = images.reshape(len(images), -1).astype(np.float32) / 255.0
        self.norms = np.einsum("nd,nd->n", self.vectors, self.vectors)

    def nearest(self, queries: np.ndarray, chunk: int = 8192) -> tuple[np.ndarray, np.ndarray]:
        """(index, RMS distance) of each query's nearest training image; queries are uint8 like the index."""
        q = queries.reshape(len(queries), -1).astype(np.float32) / 255.0
        q_norms = np.einsum("nd,nd->n", q, q)
        best = np.full(len(q), np.inf, dtype=np.float32)
        where = np.zeros(len(q), dtype=np.int64)
        for start in range(0, len(self.vectors), chunk):
            block = self.vectors[start : start + chunk]
            squared = q_norms[:, None] + self.norms[None, start : start + chunk] - 2.0 * q @ block.T  # |q - t|^2, [Q, chunk]
            index = squared.argmin(axis=1)
            value = squared[np.arange(len(q)), index]
            better = value < best
            best[better], where[better] = value[better], index[better] + start
        return where, np.sqrt(np.maximum(best, 0.0) / q.shape[1])




@dataclass
class NearestTrainingImage:
    """Flags a generated image whose nearest training image is within `max_distance` (RMS, 0..1)."""

    max_distance: float = 0.04
    name: str = "near_copy_image"

    def check(self, artifact: Any, info: Any) -> list[OutputFinding]:
        images = getattr(artifact, "images", None)
        if not isinstance(images, np.ndarray):
            return []
        split = training_split(info)
        if split is None or not hasattr(split, "images") or tuple(split.images.shape[1:]) != (images.shape[3], images.shape[1], images.shape[2]):
            return []
        index = _cached(("images", _data_key(info)), lambda: ImageIndex(split.images.permute(0, 2, 3, 1).numpy()))  # [N, C, H, W] -> [N, H, W, C], as ImageBatch holds them
        nearest, distance = index.nearest(images)
        return [OutputFinding(self.name, i, float(d), self.max_distance, f"training image {int(n)} (RMS distance {d:.3f})")
                for i, (n, d) in enumerate(zip(nearest, distance)) if d <= self.max_distance]


# ------------------------------------------------------------------------------------------ text


_BASE = np.uint64(0x9E3779B97F4A7C15)  # an odd 64-bit multiplier (the golden-ratio constant)


def _window_hashes(text: str, n: int) -> np.ndarray:
    """A 64-bit polynomial hash of every n-character window of `text`: sum_j c[i + j] * B^(n - 1 - j) mod
    2^64, with c the code points, computed as n whole-array passes (numpy's uint64 arithmetic wraps)."""
    if len(text) < n:
        return np.zeros(0, dtype=np.uint64)
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    count = len(codes) - n + 1
    hashes = np.zeros(count, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(n):
            hashes = hashes * _BASE + codes[j : j + count]
    return hashes


class TextIndex:
    """Every n-character window of a training text, hashed and sorted, for verbatim-overlap look-ups."""

    def __init__(self, text: str, n: int):
        self.n = n
        self.hashes = np.unique(_window_hashes(_squash(text), n))

    def overlap(self, text: str) -> tuple[float, str]:
        """(share of the text's characters inside a window found in the training text, the longest such passage)."""
        text = _squash(text)
        if len(text) < self.n:
            return 0.0, ""
        windows = _window_hashes(text, self.n)
        at = np.minimum(np.searchsorted(self.hashes, windows), len(self.hashes) - 1)  # binary search in the sorted index
        found = self.hashes[at] == windows if len(self.hashes) else np.zeros(len(windows), dtype=bool)
        covered = np.zeros(len(text), dtype=bool)
        for start in np.flatnonzero(found):
            covered[start : start + self.n] = True
        longest, best, run_start = 0, (0, 0), None
        for i, flag in enumerate(np.append(covered, False)):
            if flag and run_start is None:
                run_start = i
            elif not flag and run_start is not None:
                if i - run_start > longest:
                    longest, best = i - run_start, (run_start, i)
                run_start = None
        return float(covered.mean()), text[best[0] : best[1]]


def _squash(text: str) -> str:
    """Runs of white space as one space: a copy re-wrapped is still a copy."""
    return " ".join(text.split())


def training_text(split: Any, info: Any) -> str | None:
    """The training text of a language-model run: its training tokens, decoded with the run's tokenizer."""
    tokens = getattr(split, "tokens", None)
    tokenizer_json = getattr(info.config.model, "tokenizer", None)
    if tokens is None or not tokenizer_json:
        return None
    from aigc.data.tokenizers import tokenizer_from_json

    return tokenizer_from_json(tokenizer_json).decode(tokens.tolist())


@dataclass
class TrainingTextOverlap:
    """Flags a generated text when at least `max_overlap` of its characters lie in `ngram`-character runs
    copied verbatim from the training text."""

    max_overlap: float = 0.5
    ngram: int = 32
    name: str = "near_copy_text"

    def check(self, artifact: Any, info: Any) -> list[OutputFinding]:
        texts = getattr(artifact, "texts", None)
        if not isinstance(texts, list):
            return []
        split = training_split(info)
        text = None if split is None else _cached(("text", _data_key(info)), lambda: training_text(split, info))
        index = None if text is None else _cached(("ngrams", _data_key(info), self.ngram), lambda: TextIndex(text, self.ngram))
        if index is None:
            return []
        findings = []
        for i, text in enumerate(texts):
            share, passage = index.overlap(text)
            if share >= self.max_overlap:
                shown = passage if len(passage) <= 80 else passage[:77] + "..."
                findings.append(OutputFinding(self.name, i, share, self.max_overlap, f"{share:.0%} copied from the training text, e.g. {shown!r}"))
        return findings


def default_checks(action: str) -> OutputChecks:
    return OutputChecks([NearestTrainingImage(), TrainingTextOverlap()], action=action)
