"""Adversarial robustness: FGSM and PGD (models/adversarial.py) stay inside the budget and only touch the
input, PGD hurts the packaged MNIST classifier more than FGSM, `aigc robustness` reports clean vs attacked
accuracy and refuses an out-of-range eps, and the classifier family trains adversarially in the one loop."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from helpers import tiny, train_tiny
from typer.testing import CliRunner

from aigc.backbones import load_backbone
from aigc.cli.main import app
from aigc.config import DataConfig
from aigc.data import load_dataset
from aigc.errors import AigcError
from aigc.models.adversarial import fgsm, pgd
from aigc.safety.robustness import check_attack, evaluate_robustness


@pytest.fixture(scope="module")
def mnist():
    classifier = load_backbone("mnist-classifier").classifier
    test = load_dataset(DataConfig(name="mnist"), classifier.config).test
    return classifier, test.images[:200], test.labels[:200]


def test_attacks_stay_in_the_budget_and_leave_the_weights_alone(mnist):
    classifier, images, labels = mnist
    x = images[:32].float() / 127.5 - 1
    for adversarial in (fgsm(classifier.eval(), x, labels[:32], 0.1), pgd(classifier, x, labels[:32], 0.1, steps=3, generator=torch.Generator().manual_seed(0))):
        assert (adversarial - x).abs().max() <= 0.2 + 1e-6  # eps 0.1 of the pixel range = 0.2 in [-1, 1] units
        assert adversarial.min() >= -1 and adversarial.max() <= 1 and not adversarial.requires_grad
        assert (adversarial != x).any()
    assert all(p.grad is None for p in classifier.parameters())  # only the input's gradient was taken
    again = pgd(classifier, x, labels[:32], 0.1, steps=3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again, pgd(classifier, x, labels[:32], 0.1, steps=3, generator=torch.Generator().manual_seed(0)))  # seeded


def test_pgd_hurts_the_packaged_classifier_more_than_fgsm(mnist):
    classifier, images, labels = mnist
    fast = evaluate_robustness(classifier, images, labels, attack="fgsm", eps=0.2)
    strong = evaluate_robustness(classifier, images, labels, attack="pgd", eps=0.2, steps=10)
    assert fast.clean_accuracy == strong.clean_accuracy >= 0.97 and fast.count == 200
    assert strong.attacked_accuracy < fast.attacked_accuracy < fast.clean_accuracy
    assert strong.attacked_accuracy < 0.2 and strong.alpha == pytest.approx(0.05) and strong.steps == 10


@pytest.mark.parametrize(("attack", "eps", "steps", "alpha", "field"), [
    ("pgd", 0.0, 10, None, "--eps"), ("pgd", 0.7, 10, None, "--eps"), ("fgsm", -0.1, 1, None, "--eps"),
    ("pgd", 0.1, 0, None, "--steps"), ("pgd", 0.1, 10, 0.5, "--alpha"), ("cw", 0.1, 10, None, "--attack"),
])
def test_out_of_range_settings_are_clear_errors(attack, eps, steps, alpha, field):
    with pytest.raises(AigcError) as error:
        check_attack(attack, eps, steps, alpha)
    assert error.value.field == field and error.value.fix


def test_the_command_reports_clean_and_attacked_accuracy():
    result = CliRunner().invoke(app, ["robustness", "mnist-classifier", "--attack", "fgsm", "--eps", "0.05", "--eps", "0.2", "--limit", "100", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [row["eps"] for row in rows] == [0.05, 0.2] and rows[0]["data"] == "mnist test split" and rows[0]["count"] == 100
    assert rows[0]["clean_accuracy"] == rows[1]["clean_accuracy"] > rows[0]["attacked_accuracy"] > rows[1]["attacked_accuracy"]
    refused = subprocess.run([sys.executable, "-m", "aigc", "robustness", "mnist-classifier", "--eps", "0.7"], capture_output=True, text=True)
    assert refused.returncode == 2 and "--eps" in refused.stderr and "out of range" in refused.stderr and "Traceback" not in refused.stderr


def test_an_audio_classifier_is_attacked_on_its_clips(tmp_path):
    # int16 clips become x / 32768 (the audio families' input), not pixels: an eps of 1% of full scale.
    from aigc.safety.robustness import to_unit_range

    clips = torch.tensor([[[-32768, 0, 16384, 32767]]], dtype=torch.int16)
    assert torch.allclose(to_unit_range(clips), torch.tensor([[[-1.0, 0.0, 0.5, 32767 / 32768]]]))
    with pytest.raises(AigcError) as refused:
        to_unit_range(torch.zeros(1, 4))
    assert refused.value.field == "TARGET"
    settings = ("model.n_fft=512", "model.hop_length=32", "model.n_mels=32", "model.widths=[8, 16]", "model.feature_dim=32", "model.dropout=0")
    run = train_tiny("audio-classifier", tmp_path / "tones", *settings, "train.max_steps=200", "optim.lr=3e-3").run_dir  # as test_audio_metrics
    result = CliRunner().invoke(app, ["robustness", str(run), "--attack", "pgd", "--steps", "3", "--eps", "0.001", "--eps", "0.2", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert rows[0]["data"].startswith("tones ") and rows[0]["count"] > 0
    assert rows[0]["clean_accuracy"] == rows[1]["clean_accuracy"] > 0.5  # it tells the ten tones apart
    assert rows[1]["attacked_accuracy"] < rows[1]["clean_accuracy"]  # a 20%-of-full-scale budget breaks it


def test_a_run_that_is_not_a_classifier_is_refused(tmp_path):
    run = train_tiny("dcgan", tmp_path / "dcgan").run_dir
    result = CliRunner().invoke(app, ["robustness", str(run), "--eps", "0.1"])
    assert isinstance(result.exception, AigcError) and "not a classifier" in str(result.exception) and result.exception.field == "TARGET"


def test_adversarial_training_runs_in_the_one_loop(tmp_path):
    config = tiny("classifier", "model.adversarial_eps=0.1", "model.adversarial_steps=2")
    assert config.model.adversarial_eps == 0.1
    result = train_tiny("classifier", tmp_path / "adv", "model.adversarial_eps=0.1", "model.adversarial_steps=2")
    logged = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert any("adversarial_accuracy" in json.dumps(row) for row in logged)  # the adversarial half was trained and logged
    plain = train_tiny("classifier", tmp_path / "plain")
    assert not any("adversarial_accuracy" in json.dumps(row) for row in (json.loads(line) for line in (plain.run_dir / "metrics.jsonl").read_text().splitlines()))
    result = CliRunner().invoke(app, ["robustness", str(result.run_dir), "--attack", "fgsm", "--eps", "0.1", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["data"] == "digits validation split"  # a run is attacked on its own held-out images
    with pytest.raises(AigcError, match="adversarial_eps"):
        tiny("classifier", "model.adversarial_eps=0.9")
