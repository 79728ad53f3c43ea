"""CycleGAN between MNIST handwriting and digits printed from the installed fonts: data, training, translation."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import aigc
from aigc.data.digit_domains import FONT_DIR, font_files, render_digits
from conftest import require
from helpers import train_tiny

pytestmark = pytest.mark.filterwarnings("ignore::aigc.errors.AigcWarning")


@pytest.fixture(autouse=True)
def _needs_fonts():
    require(FONT_DIR.is_dir(), f"DejaVu fonts in {FONT_DIR} (apt-get install fonts-dejavu-core)")


def test_printed_digits_look_like_mnist_digits():
    images, labels = render_digits(font_files(None)[:2], variants=2)
    assert images.shape == (40, 1, 28, 28) and images.dtype == torch.uint8
    assert labels.tolist() == [d for _ in range(2) for d in range(10) for _ in range(2)]
    ink = images.float() / 255
    assert ink[:, :, :2].amax() < 0.1 and ink[:, :, -2:].amax() < 0.1 and ink[:, :, :, :2].amax() < 0.1  # a dark margin, as in MNIST
    assert 0.05 < ink.mean() < 0.35  # white strokes on black


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from aigc.training.callbacks import Callback

    class Snapshot(Callback):
        def on_fit_start(self, state):
            self.initial = {name: p.detach().clone() for name, p in state.model.named_parameters()}

    snapshot = Snapshot()
    result = train_tiny("cyclegan", tmp_path_factory.mktemp("cyclegan") / "run", "train.max_steps=15", callbacks=[snapshot])
    return result, snapshot.initial


def test_training_updates_both_generators_and_both_critics(trained):
    result, initial = trained
    module = aigc.load(result.run_dir, weights="model").module
    for network in ("a_to_b", "b_to_a", "discriminator_a", "discriminator_b"):
        names = [name for name in initial if name.startswith(network + ".")]
        assert names and any(not torch.equal(initial[n], module.state_dict()[n]) for n in names), network
    lines = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines() if '"generators/cycle"' in line]
    cycle = [line["generators/cycle"] for line in lines]
    assert all(np.isfinite(cycle)) and np.mean(cycle[-3:]) < np.mean(cycle[:3])  # reconstructions improve


def test_translation_both_ways_from_python_and_the_cli(trained, tmp_path):
    result, _ = trained
    digits, _ = render_digits(font_files(None)[:1], variants=1)
    path = tmp_path / "seven.png"
    Image.fromarray(digits[7, 0].numpy()).save(path)
    model = aigc.load(result.run_dir)
    forward = model.generate({"image": str(path), "seed": 0})
    backward = model.generate({"image": str(path), "direction": "b_to_a", "seed": 0})
    assert forward.images.shape == (1, 28, 28, 1) and forward.parameters["direction"] == "a_to_b"
    assert not np.array_equal(forward.images, backward.images)  # two different generators
    out = tmp_path / "translated.png"
    done = subprocess.run([sys.executable, "-m", "aigc", "translate", str(result.run_dir), str(path), "--reverse", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    record = json.loads(Image.open(out).text["aigc"])
    assert record["method"] == "cyclegan" and record["direction"] == "b_to_a" and record["model"].startswith("cyclegan:")
    np.testing.assert_array_equal(np.asarray(Image.open(out))[..., None] if np.asarray(Image.open(out)).ndim == 2 else np.asarray(Image.open(out)), backward.images[0])


def test_translate_refuses_a_model_that_does_not_translate(tmp_path):
    run = train_tiny("vae", tmp_path / "vae")
    done = subprocess.run([sys.executable, "-m", "aigc", "translate", str(run.run_dir), "x.png", "--out", str(tmp_path / "o.png")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "translate takes a cyclegan run" in done.stderr and "Traceback" not in done.stderr
