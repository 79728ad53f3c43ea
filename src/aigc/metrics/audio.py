"""Audio scores, offline: an Inception Score and a Fréchet distance on the project's own spoken-digit
classifier (labelled IS-DigitClassifier / FD-DigitClassifier, never plain "IS"/"FAD": the network is not
Inception or VGGish), and the log-spectral distance for autoencoders.

    classifier = load_digit_classifier()                      # packaged: aigc/metrics/weights/audio-digit-classifier.*
    scores = score_clips(generated_waveforms, reference_waveforms, classifier, sample_rate=16_000)

The classifier is `models/audio/classifier.py` trained with `aigc train audio-classifier-digits` and
packaged with `package_audio_classifier` (weights + a card with its sha256, test accuracy and training
command). Its protocol travels with every score: sample and reference counts, the network and its
weights' sha256, and how clips were fitted to it (resampled, centred, cut or padded).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aigc.errors import AigcError
from aigc.files import atomic_write_text, sha256_file
from aigc.metrics.distances import feature_statistics, frechet_distance
from aigc.metrics.inception_score import inception_score

PACKAGED_NAME = "audio-digit-classifier"
IS_LABEL, FD_LABEL = "IS-DigitClassifier", "FD-DigitClassifier"


def weights_dir() -> Path:
    from importlib import resources

    return Path(str(resources.files("aigc") / "metrics" / "weights"))


@dataclass(frozen=True)
class DigitClassifier:
    """A trained audio classifier in eval mode, and what identifies it in a score's protocol."""

    module: torch.nn.Module
    name: str
    sha256: str

    @property
    def sample_rate(self) -> int:
        return self.module.config.sample_rate

    @property
    def sample_length(self) -> int:
        return self.module.config.sample_length


def load_digit_classifier(path: str | Path | None = None, *, device: str = "cpu") -> DigitClassifier:
    """The packaged spoken-digit classifier, or a classifier run folder / checkpoint you trained (`path`)."""
    from safetensors.torch import load_file

    from aigc.models.audio.classifier import AudioClassifier, AudioClassifierConfig

    if path is not None:
        from aigc.loading import load

        loaded = load(path, device=device, weights="model")
        if loaded.info.family != "audio-classifier":
            raise AigcError(f"{path} holds a {loaded.info.family} run, not an audio classifier", field="classifier", fix="train one: aigc train audio-classifier-digits")
        return DigitClassifier(loaded.module.eval(), f"{loaded.info.model_name}", loaded.info.checkpoint_sha256)
    card_path = weights_dir() / f"{PACKAGED_NAME}.json"
    if not card_path.is_file():
        raise AigcError(f"the packaged audio classifier is missing ({card_path})", field="classifier", fix="reinstall aigc, or pass the run folder of one you trained")
    card = json.loads(card_path.read_text(encoding="utf-8"))
    weights = weights_dir() / card["file"]
    digest = sha256_file(weights)
    if digest != card["sha256"]:
        raise AigcError(f"{weights} does not match the sha256 in its card", field="classifier", fix="reinstall aigc")
    module = AudioClassifier(AudioClassifierConfig(**card["config"]))
    module.load_state_dict(load_file(str(weights)))
    return DigitClassifier(module.to(device).eval(), PACKAGED_NAME, digest)


@torch.no_grad()
def classify(classifier: DigitClassifier, waveforms: np.ndarray, sample_rate: int, *, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(features [N, F], class probabilities [N, K]) of float waveforms [N, T], fitted to the classifier's
    rate and length first (resampled; centred and cut or padded)."""
    from aigc.data.audio import fit_length, resample

    waveforms = np.asarray(waveforms, dtype=np.float32)
    if waveforms.ndim != 2 or len(waveforms) == 0:
        raise AigcError(f"expected waveforms [N, T] with N >= 1, got shape {waveforms.shape}", field="waveforms")
    waveforms = resample(waveforms, sample_rate, classifier.sample_rate)
    if waveforms.shape[1] != classifier.sample_length:
        waveforms = np.stack([fit_length(clip, classifier.sample_length) for clip in waveforms])
    module = classifier.module.eval()
    device = next(module.parameters()).device
    features, probabilities = [], []
    for start in range(0, len(waveforms), batch_size):
        audio = torch.from_numpy(waveforms[start : start + batch_size]).to(device).unsqueeze(1)  # [B, 1, T]
        feature = module.features(audio)
        features.append(feature.cpu().double().numpy())
        probabilities.append(torch.softmax(module.network.logits_from_features(feature).double(), dim=1).cpu().numpy())
    return np.concatenate(features), np.concatenate(probabilities)


@dataclass(frozen=True)
class AudioScores:
    inception_score: float  # IS-DigitClassifier, mean over splits; in [1, classes]
    inception_score_std: float
    frechet_distance: float | None  # FD-DigitClassifier to the reference clips (None without a reference)
    accuracy: float | None  # share of clips classified as their requested label (conditional models)
    protocol: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {IS_LABEL: self.inception_score, f"{IS_LABEL}_std": self.inception_score_std, FD_LABEL: self.frechet_distance, "label_accuracy": self.accuracy, "protocol": self.protocol}


def score_clips(
    generated: np.ndarray,
    reference: np.ndarray | None,
    classifier: DigitClassifier,
    *,
    sample_rate: int,
    labels: list[int] | None = None,
    splits: int = 10,
) -> AudioScores:
    """IS of `generated` clips, FD between their features and `reference`'s, and (with `labels`) the share
    the classifier hears as the label they were generated for."""
    features, probabilities = classify(classifier, generated, sample_rate)
    score = inception_score(probabilities, splits=splits)
    distance = None
    if reference is not None:
        reference_features, _ = classify(classifier, reference, sample_rate)
        distance = frechet_distance(feature_statistics(features), feature_statistics(reference_features))
    accuracy = None if labels is None else float((probabilities.argmax(axis=1) == np.asarray(labels)).mean())
    protocol = {
        "samples": len(generated), "reference_samples": 0 if reference is None else len(reference), "splits": splits,
        "feature_network": classifier.name, "weights_sha256": classifier.sha256, "features": "penultimate layer",
        "fit": f"resampled to {classifier.sample_rate} Hz, centred and cut or padded to {classifier.sample_length} samples",
    }
    return AudioScores(score.mean, score.std, distance, accuracy, protocol)


def package_audio_classifier(run: str | Path, *, command: str, test_accuracy: float, test_clips: int, destination: str | Path | None = None, **details: Any) -> Path:
    """Copy a trained audio classifier's weights into the package with its card (sha256, accuracy, command)."""
    from safetensors.torch import save_file

    from aigc.loading import load

    loaded = load(run, weights="model")
    folder = Path(destination) if destination is not None else weights_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{PACKAGED_NAME}.safetensors"
    save_file({key: value.contiguous() for key, value in loaded.module.state_dict().items()}, str(target))
    target.chmod(0o644)  # package data: readable by everyone who installs it
    card = {
        "name": PACKAGED_NAME, "file": target.name, "sha256": sha256_file(target),
        "dataset": loaded.info.config.data.name, "test_accuracy": test_accuracy, "test_clips": test_clips,
        "config": loaded.info.config.model.model_dump(mode="json"), "training_command": command, **details,
        "trained_steps": loaded.info.step, "versions": loaded.info.sidecar.get("versions", {}),
    }
    atomic_write_text(folder / f"{PACKAGED_NAME}.json", json.dumps(card, indent=2) + "\n")
    return target


def summary(document: dict[str, Any]) -> str:
    """One line for a terminal or RESULTS.md, from `evaluate_audio_run`'s (or AudioScores.to_dict's) result."""
    distance = "-" if document.get(FD_LABEL) is None else f"{document[FD_LABEL]:.2f}"
    heard = "" if document.get("label_accuracy") is None else f", heard as the requested digit {document['label_accuracy']:.1%}"
    speed = f", {document['real_time_factor']}x real time" if "real_time_factor" in document else ""
    return f"{IS_LABEL} {document[IS_LABEL]:.2f} ± {document[f'{IS_LABEL}_std']:.2f}, {FD_LABEL} {distance}{heard}{speed} ({document['protocol']['samples']} clips)"


def reference_clips(dataset: str, split: str, classifier: DigitClassifier) -> tuple[np.ndarray, np.ndarray]:
    """(float waveforms [N, T], labels) of a dataset split, at the classifier's rate and length."""
    from types import SimpleNamespace

    from aigc.config import DataConfig
    from aigc.data import load_dataset

    geometry = SimpleNamespace(sample_rate=classifier.sample_rate, sample_length=classifier.sample_length)
    data = getattr(load_dataset(DataConfig(name=dataset), geometry), split)
    if data is None or len(data) < 2:
        raise AigcError(f"dataset {dataset} has no {split} split to compare with", field="--reference-split", fix="use test or val")
    return data.clips.numpy().astype(np.float32) / 32768, data.labels.numpy()


def evaluate_audio_run(run: str | Path, *, count: int = 1000, seed: int = 0, batch_size: int = 50, dataset: str | None = None,
                       reference_split: str = "test", classifier: DigitClassifier | None = None) -> dict[str, Any]:
    """Generate `count` clips with a trained audio model (seeds seed.., labels cycling 0..K-1 for conditional
    models) through the one generation path, score them against a real split (of the run's own dataset
    unless `dataset` names another), and time the generation (real-time factor = seconds of audio per
    second of wall time)."""
    import time

    from aigc.generation.requests import AudioRequest
    from aigc.loading import load

    classifier = classifier or load_digit_classifier()
    model = load(run)
    dataset = dataset or model.info.config.data.name
    classes = getattr(model.module, "num_classes", None)
    waveforms, labels, seconds, rate = [], [], 0.0, None
    for start in range(0, count, batch_size):
        size = min(batch_size, count - start)
        request = AudioRequest(count=size, seed=seed + start, labels=[(start + i) % classes for i in range(size)] if classes else None)
        began = time.perf_counter()
        clip = model.generate(request)
        seconds += time.perf_counter() - began
        waveforms.append(clip.waveforms)
        labels += clip.labels or []
        rate = clip.sample_rate
    generated = np.concatenate(waveforms)
    reference, _ = reference_clips(dataset, reference_split, classifier)
    scores = score_clips(generated, reference, classifier, sample_rate=rate, labels=labels or None)
    scores.protocol.update(reference=f"{dataset} {reference_split} split", seed=seed)
    audio_seconds = generated.shape[0] * generated.shape[1] / rate
    return {**scores.to_dict(), "model": model.info.model_name, "step": model.info.step, "generation_seconds": round(seconds, 2), "real_time_factor": round(audio_seconds / seconds, 1)}


def is_audio_run(path: str | Path) -> bool:
    """Whether a run folder, checkpoint or zoo name holds an audio model (so `aigc eval` scores it here)."""
    from aigc import checkpoint as ckpt
    from aigc import zoo
    from aigc.errors import AigcError as _Error
    from aigc.registry import MODELS

    try:
        family = ckpt.read_sidecar(ckpt.resolve_checkpoint(zoo.resolve(path)))["config"]["family"]
    except (_Error, KeyError, TypeError):
        return False  # not a readable run: the image path reports what is wrong with it
    return family in MODELS and MODELS.get(family).modality == "audio" and "sample_length" in MODELS.get(family).config_class.model_fields  # not music


def write_audio_eval(run: str | Path, *, out: Path | None = None, feature_network: str | None = None, **settings: Any) -> tuple[dict[str, Any], Path | None]:
    """`aigc eval` for an audio run: the scores, written as eval.json into `out` or the run folder.
    `feature_network`: an audio-classifier run folder instead of the packaged classifier."""
    document = evaluate_audio_run(run, classifier=load_digit_classifier(feature_network), **settings)
    folder = out if out is not None else (Path(run) if Path(run).is_dir() else None)
    if folder is None:
        return document, None
    return document, atomic_write_text(Path(folder) / "eval.json", json.dumps(document, indent=2, default=float) + "\n")
