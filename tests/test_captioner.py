"""The captioner family: image -> caption through `aigc.load(...).generate(CaptionRequest(image=...))`."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import aigc
from aigc.data import load_dataset
from aigc.data.tokenizers import BOS, EOS, PAD
from aigc.errors import AigcError
from aigc.generation.requests import CaptionRequest
from aigc.generation.text import TextSample
from helpers import tiny, train_tiny


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return train_tiny("captioner", tmp_path_factory.mktemp("captioner") / "run", "train.max_steps=20")


@pytest.fixture(scope="module")
def digit():
    """One validation image of the tiny dataset as uint8 [8, 8]."""
    config = tiny("captioner")
    data = load_dataset(config.data, config.model)
    return ((data.val.get_batch(torch.arange(1))["images"][0, 0] + 1) * 127.5).round().to(torch.uint8).numpy()


def test_captioning_batches_hold_bos_caption_eos_tokens():
    config = tiny("captioner")
    data = load_dataset(config.data, config.model)
    batch = data.train.get_batch(torch.arange(8))
    captions = batch["captions"]
    assert captions.dtype == torch.int64 and captions.shape[0] == 8
    assert (captions[:, 0] == BOS).all()
    for row in captions.tolist():
        ids = [t for t in row if t != PAD]
        assert ids[-1] == EOS and EOS not in ids[1:-1]
    assert data.model_settings["tokenizer"] and data.model_settings["vocab_size"] > 20


def test_a_caption_from_an_array_or_a_file_is_the_same_and_repeatable(run, digit, tmp_path):
    model = aigc.load(run.run_dir)
    sample = model.generate(CaptionRequest(image=digit, seed=1))
    assert isinstance(sample, TextSample) and len(sample.texts) == 1 and sample.finish_reasons[0] in ("eos", "length")
    assert sample.token_counts[0] <= CaptionRequest(image=digit).max_tokens
    path = tmp_path / "digit.png"
    Image.fromarray(digit, mode="L").save(path)
    assert model.generate(CaptionRequest(image=str(path), seed=1)).text == sample.text
    assert model.generate(CaptionRequest(image=path, seed=1)).text == sample.text
    # Grey as [H, W, 1], or RGB: the model fits it to its own one channel the way the datasets do.
    assert model.generate(CaptionRequest(image=digit[:, :, None])).text == sample.text
    assert model.generate(CaptionRequest(image=np.repeat(digit[:, :, None], 3, axis=2))).text == sample.text
    # The same through the Python dict form the studio uses, and with beam search off (greedy).
    assert model.generate({"image": digit}).text == sample.text
    greedy = model.generate(CaptionRequest(image=digit, num_beams=1))
    assert greedy.parameters["num_beams"] == 1 and isinstance(greedy.text, str)


def test_a_larger_rgba_photo_is_fitted_to_the_model(run, tmp_path):
    rgba = np.zeros((40, 60, 4), dtype=np.uint8)
    rgba[10:30, 20:40] = (255, 255, 255, 255)  # a white square on a transparent (white) background
    path = tmp_path / "photo.png"
    Image.fromarray(rgba, mode="RGBA").save(path)
    assert isinstance(aigc.load(run.run_dir).generate(CaptionRequest(image=str(path))).text, str)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (None, "a caption needs an image"),
        ("missing.png", "does not exist"),
        (np.zeros((8, 8), dtype=np.float32), "expected a uint8 array"),
        (np.zeros((8, 8, 2), dtype=np.uint8), "expected a uint8 array"),
        ([1, 2, 3], "expected a path or a uint8 array, got list"),
    ],
)
def test_a_request_without_a_usable_image_is_a_clear_error(run, image, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AigcError, match=message) as error:
        aigc.load(run.run_dir).generate({} if image is None else {"image": image})
    assert "image" in str(error.value)


def test_a_file_that_is_not_an_image_is_a_clear_error(run, tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not a picture", encoding="utf-8")
    with pytest.raises(AigcError, match="is not an image file Pillow can read"):
        aigc.load(run.run_dir).generate({"image": str(path)})


@pytest.mark.slow
def test_the_captioner_learns_to_name_the_digit(tmp_path):
    """A slightly larger model for 800 steps names most held-out digits (in English or Chinese): 0.72 of 100 when written."""
    from aigc.data.captions import DIGIT_WORDS_EN, DIGIT_WORDS_ZH

    result = train_tiny("captioner", tmp_path / "run", "train.max_steps=800", "model.width=32", "model.hidden_size=64", "model.embedding_dim=32", "train.eval_every=0")
    model = aigc.load(result.run_dir)
    data = load_dataset(model.info.config.data, model.info.config.model)
    batch = data.val.get_batch(torch.arange(min(100, len(data.val))))
    right = 0
    for image, label in zip(batch["images"], batch["labels"].tolist()):
        text = model.generate(CaptionRequest(image=((image[0] + 1) * 127.5).round().to(torch.uint8).numpy())).text
        right += DIGIT_WORDS_EN[label] in text.split() or str(label) in text.split() or DIGIT_WORDS_ZH[label] in text
    assert right / len(batch["labels"]) > 0.5, right


def test_the_cli_captions_an_image_file_and_refuses_a_broken_one(run, digit, tmp_path):
    import subprocess
    import sys

    def aigc_cli(*args):
        return subprocess.run([sys.executable, "-m", "aigc", "generate", str(run.run_dir), *args], capture_output=True, text=True, timeout=120)

    path = tmp_path / "digit.png"
    Image.fromarray(digit, mode="L").save(path)
    result = aigc_cli("--image", str(path), "--seed", "1", "--out", str(tmp_path / "caption.txt"))
    assert result.returncode == 0, result.stderr
    expected = aigc.load(run.run_dir).generate(CaptionRequest(image=digit, seed=1)).text
    assert result.stdout.rstrip("\n") == expected and (tmp_path / "caption.txt").read_text(encoding="utf-8").startswith(expected)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    result = aigc_cli("--image", str(broken))
    assert result.returncode == 2 and "Traceback" not in result.stderr and "request.image" in result.stderr
