"""Audio scores: IS/FD-DigitClassifier behave as scores should on a classifier trained here, and the
packaged spoken-digit classifier recognises digits spoken by voices it never heard."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from aigc.data.audio import make_tones
from aigc.errors import AigcError
from aigc.metrics.audio import FD_LABEL, IS_LABEL, classify, load_digit_classifier, score_clips, weights_dir
from conftest import require
from helpers import train_tiny


@pytest.fixture(scope="module")
def tone_classifier_run(tmp_path_factory):
    """The tiny audio classifier trained long enough (32 mel bands, 200 steps: seconds) to tell the ten tones apart."""
    settings = ("model.n_fft=512", "model.hop_length=32", "model.n_mels=32", "model.widths=[8, 16]", "model.feature_dim=32", "model.dropout=0")
    return train_tiny("audio-classifier", tmp_path_factory.mktemp("classifier") / "run", *settings, "train.max_steps=200", "optim.lr=3e-3").run_dir


@pytest.fixture(scope="module")
def tone_classifier(tone_classifier_run):
    return load_digit_classifier(tone_classifier_run)


def test_real_clips_score_high_noise_scores_low_and_fd_separates_them(tone_classifier):
    real, labels = make_tones(400, 16_000, 1_024, seed=5)
    other, _ = make_tones(400, 16_000, 1_024, seed=6)
    real, other = real.astype(np.float32) / 32768, other.astype(np.float32) / 32768
    noise = np.random.default_rng(0).normal(0, 0.3, real.shape).astype(np.float32)
    one_class = real[labels == 3]

    real_scores = score_clips(real, other, tone_classifier, sample_rate=16_000, labels=labels.tolist())
    assert real_scores.accuracy > 0.9  # it learned the tones
    assert real_scores.inception_score > 7  # confident and spread over the ten classes
    collapsed = score_clips(one_class, other, tone_classifier, sample_rate=16_000)
    assert collapsed.inception_score < 1.5  # one class only: IS near 1
    noisy = score_clips(noise, other, tone_classifier, sample_rate=16_000)
    assert noisy.frechet_distance > 5 * real_scores.frechet_distance
    assert collapsed.frechet_distance > real_scores.frechet_distance
    record = real_scores.to_dict()
    assert record[IS_LABEL] == real_scores.inception_score and FD_LABEL in record
    assert record["protocol"]["samples"] == 400 and record["protocol"]["weights_sha256"] == tone_classifier.sha256


def test_clips_are_fitted_to_the_classifier(tone_classifier):
    clips, labels = make_tones(40, 32_000, 2_048, seed=2)  # twice the rate: resampled to 16 kHz, 1,024 samples
    _, probabilities = classify(tone_classifier, clips.astype(np.float32) / 32768, 32_000)
    assert probabilities.shape == (40, 10) and (probabilities.argmax(axis=1) == labels).mean() > 0.8


def test_a_run_is_generated_scored_and_timed_with_its_protocol(tone_classifier, tmp_path):
    from aigc.metrics.audio import evaluate_audio_run

    run = train_tiny("wavegan", tmp_path / "gan", "model.conditional=true")
    result = evaluate_audio_run(run.run_dir, count=30, batch_size=7, dataset="tones", classifier=tone_classifier)
    assert 1 <= result[IS_LABEL] <= 10 and result[FD_LABEL] > 0 and 0 <= result["label_accuracy"] <= 1
    assert result["protocol"]["samples"] == 30 and result["protocol"]["reference"] == "tones test split"
    assert result["real_time_factor"] > 0 and result["step"] == 4
    again = evaluate_audio_run(run.run_dir, count=30, batch_size=30, dataset="tones", classifier=tone_classifier)
    assert again[FD_LABEL] == pytest.approx(result[FD_LABEL], rel=1e-6)  # seeded clips: the same score whatever the batch size


def test_aigc_eval_scores_an_audio_run_and_writes_eval_json(tone_classifier_run, tmp_path):
    import json
    import subprocess
    import sys

    run = train_tiny("specgan", tmp_path / "gan").run_dir
    done = subprocess.run([sys.executable, "-m", "aigc", "eval", str(run), "-n", "20", "--feature-network", str(tone_classifier_run), "--reference-split", "test"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "IS-DigitClassifier" in done.stdout and "FD-DigitClassifier" in done.stdout and "real time" in done.stdout
    document = json.loads((run / "eval.json").read_text())
    assert document["protocol"]["samples"] == 20 and document["protocol"]["reference"] == "tones test split"


def test_bad_input_is_a_clear_error(tone_classifier, tmp_path):
    with pytest.raises(AigcError, match="waveforms"):
        classify(tone_classifier, np.zeros(100, np.float32), 16_000)
    gan = train_tiny("wavegan", tmp_path / "gan")
    with pytest.raises(AigcError, match="not an audio classifier"):
        load_digit_classifier(gan.run_dir)


def test_the_packaged_classifier_recognises_unheard_speakers():
    require((weights_dir() / "audio-digit-classifier.json").is_file(), "the packaged audio-digit-classifier weights")
    require(shutil.which("espeak-ng") is not None, "espeak-ng (apt-get install espeak-ng)")
    from aigc.data.prepare import spoken_digits as sd

    classifier = load_digit_classifier()
    # A voice variant from the test split of the default recipe: never in the classifier's training data.
    recipe = sd.resolve_recipe({"english_voices": ["en-us", "en-gb"]})
    test_variant = next(clip["variant"] for clip in sd.plan(recipe) if clip["split"] == "test")
    clips, records, _ = sd.build_clips({**recipe, "variants": [test_variant]})
    waveforms = clips.astype(np.float32) / 32768
    _, probabilities = classify(classifier, waveforms, 16_000)
    digits = np.array([record["digit"] for record in records])
    assert (probabilities.argmax(axis=1) == digits).mean() >= 0.8, (test_variant, probabilities.argmax(axis=1), digits)
