"""Prompt accuracy (metrics/prompt_accuracy.py) on stand-in "models" that answer each prompt with real MNIST
digits: of the prompted class, of the next class, or one digit repeated — what a perfect, a wrong and a
collapsed text-to-image model would draw."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aigc.config import load_config
from aigc.data import load_dataset
from aigc.data.captions import LANGUAGES, class_captions
from aigc.errors import AigcError
from aigc.generation.outputs import ImageBatch
from aigc.generation.requests import ImageRequest, PromptImageRequest
from aigc.metrics.prompt_accuracy import prompt_accuracy


class RealDigitsForThePrompt:
    request_class = PromptImageRequest

    def __init__(self, digits: dict[int, np.ndarray], shift: int = 0, repeat_one: bool = False):
        self.digits, self.shift, self.repeat_one = digits, shift, repeat_one
        self.label_of = {
            prompt: label
            for label in range(10)
            for template_set in ("train", "heldout")
            for language in LANGUAGES
            for prompt in class_captions("mnist-captions", label, template_set, language)
        }

    def generate(self, request: PromptImageRequest) -> ImageBatch:
        pool = self.digits[(self.label_of[request.prompt] + self.shift) % 10]
        picks = [0] * request.count if self.repeat_one else [(request.seed + i) % len(pool) for i in range(request.count)]
        return ImageBatch(images=pool[picks], seeds=list(range(request.count)), labels=None, model="stand-in")


@pytest.fixture(scope="module")
def digits() -> dict[int, np.ndarray]:
    config = load_config("dcgan-mnist")
    batch = load_dataset(config.data, config.model).train.get_batch(torch.arange(3000))
    images = ((batch["images"] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    labels = batch["labels"].numpy()
    return {k: images[labels == k] for k in range(10)}


def test_real_digits_of_the_prompted_class_score_near_the_classifier_accuracy(digits):
    report = prompt_accuracy(RealDigitsForThePrompt(digits), samples_per_prompt=4)
    assert report["accuracy"] >= 0.95 and min(report["by_class"]) >= 0.8
    assert set(report["by_language"]) == {"en", "zh"}
    assert report["protocol"]["template_set"] == "heldout" and report["images"] == report["protocol"]["prompts"] * 4
    assert report["protocol"]["classifier"]["name"] == "mnist-classifier"
    assert 0.08 < report["within_prompt_std"] < 0.3  # real digits of one class vary (0.10 for 4 per prompt)


def test_digits_of_another_class_score_near_zero(digits):
    assert prompt_accuracy(RealDigitsForThePrompt(digits, shift=1), samples_per_prompt=4)["accuracy"] <= 0.05


def test_one_image_per_prompt_follows_prompts_but_has_no_spread(digits):
    report = prompt_accuracy(RealDigitsForThePrompt(digits, repeat_one=True), samples_per_prompt=4)
    assert report["accuracy"] >= 0.9 and report["within_prompt_std"] == 0.0


def test_a_model_without_prompts_or_a_dataset_without_classes_is_refused(digits):
    class Unprompted:
        request_class = ImageRequest

    with pytest.raises(AigcError, match="takes no prompts"):
        prompt_accuracy(Unprompted())
    with pytest.raises(AigcError, match="has no class captions"):
        prompt_accuracy(RealDigitsForThePrompt(digits), "emoji")
