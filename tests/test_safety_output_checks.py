"""Output checks (aigc/safety/output_checks.py): an output that IS a training sample (an image, a passage of
the training text) is flagged, or refused under `block`; a fresh output of the same run is not; further
checkers plug into the same hook; AIGC_OUTPUT_CHECKS turns them on for the one generation path."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from helpers import tiny_run

import aigc
from aigc.errors import AigcError
from aigc.generation.outputs import ImageBatch
from aigc.generation.requests import ImageRequest
from aigc.generation.text import TextRequest, TextSample
from aigc.safety import SafetySettings, default_policy
from aigc.safety.output_checks import NearestTrainingImage, OutputChecks, OutputFinding, OutputRefused, TrainingTextOverlap, training_split, training_text


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return aigc.load(str(tiny_run(tmp_path_factory, "cgan")))


@pytest.fixture(scope="module")
def writer(tmp_path_factory):
    return aigc.load(str(tiny_run(tmp_path_factory, "gpt")))


def _batch(images: np.ndarray) -> ImageBatch:
    return ImageBatch(images=images, seeds=list(range(len(images))), labels=None, model="test")


def test_a_training_image_is_flagged_and_a_fresh_one_is_not(digits):
    split = training_split(digits.info)
    copies = split.images[[5, 300]].permute(0, 2, 3, 1).numpy()  # [N, H, W, C], as generated images are held
    noisy = np.clip(copies.astype(int) + np.random.default_rng(0).integers(-4, 5, copies.shape), 0, 255).astype(np.uint8)  # re-encoded-like
    fresh = digits.generate(ImageRequest(count=4, seed=3)).images
    checks = OutputChecks([NearestTrainingImage()])
    with pytest.warns(aigc.errors.AigcWarning, match="near_copy_image"):
        flagged = checks(_batch(np.concatenate([fresh[:1], copies, noisy])), None, digits.info)
    found = flagged.parameters["output_checks"]
    assert [f["index"] for f in found] == [1, 2, 3, 4]  # not the fresh image at 0
    assert found[0]["score"] < 1e-3 and found[0]["evidence"].startswith("training image 5 ") and found[1]["evidence"].startswith("training image 300 ")
    assert 0 < found[2]["score"] <= 0.04 and found[0]["action"] == "warn"
    assert all(f"near_copy_image" in file.record["output_checks"][0]["check"] for file in flagged.files()[1:2])  # the files record it
    assert checks(_batch(fresh), None, digits.info).parameters.get("output_checks") is None  # fresh: unchanged


def test_block_refuses_a_copy_with_its_reason(digits):
    copy = training_split(digits.info).images[[7]].permute(0, 2, 3, 1).numpy()
    with pytest.raises(OutputRefused, match=r"near_copy_image \(output 0\): training image 7 ") as refused:
        OutputChecks([NearestTrainingImage()], action="block")(_batch(copy), None, digits.info)
    assert refused.value.field == "output" and "AIGC_OUTPUT_CHECKS" in refused.value.fix
    with pytest.raises(AigcError, match="unknown output check action"):
        OutputChecks([], action="refuse")


def test_a_passage_of_the_training_text_is_flagged_and_a_sampled_text_is_not(writer):
    corpus = training_text(training_split(writer.info), writer.info)
    assert corpus and len(corpus) > 400
    passage = corpus[100:260]
    fresh = writer.generate(TextRequest(prompt="", max_tokens=60, seed=2))
    sample = dataclasses.replace(fresh, texts=[fresh.texts[0], passage, "q" * 40 + passage[:40]], seeds=[2, 3, 4], token_counts=[0, 0, 0], finish_reasons=["length"] * 3)
    with pytest.warns(aigc.errors.AigcWarning, match="near_copy_text"):
        checked = OutputChecks([TrainingTextOverlap()])(sample, None, writer.info)
    found = checked.parameters["output_checks"]
    assert [f["index"] for f in found] == [1] and found[0]["score"] == 1.0 and "copied from the training text" in found[0]["evidence"]
    assert " ".join(passage.split())[:20] in found[0]["evidence"]


def test_further_checkers_plug_into_the_same_hook(digits):
    class TooDark:
        name = "too_dark"

        def check(self, artifact, info):
            return [OutputFinding(self.name, i, float(image.mean()), 10.0, "mean pixel below 10") for i, image in enumerate(artifact.images) if image.mean() < 10]

    dark = _batch(np.zeros((2, 8, 8, 1), dtype=np.uint8))
    with pytest.warns(aigc.errors.AigcWarning, match="too_dark"):
        flagged = OutputChecks([TooDark()])(dark, None, digits.info)
    assert [f["check"] for f in flagged.parameters["output_checks"]] == ["too_dark", "too_dark"]


def test_the_setting_puts_the_checks_on_the_one_generation_path(digits, monkeypatch):
    policy = default_policy(SafetySettings(moderation=False, watermark=False, output_checks="block"))
    assert isinstance(policy.after[0], OutputChecks) and policy.after[0].action == "block"
    made = digits.generate(ImageRequest(count=2, seed=9), policy=policy)  # fresh images pass even under block
    assert "output_checks" not in made.parameters
    assert not any(isinstance(hook, OutputChecks) for hook in default_policy(SafetySettings()).after)  # off by default
    monkeypatch.setenv("AIGC_OUTPUT_CHECKS", "warn")
    assert SafetySettings.from_env().output_checks == "warn"
    monkeypatch.setenv("AIGC_OUTPUT_CHECKS", "maybe")
    with pytest.raises(AigcError, match="not off, warn or block") as error:
        SafetySettings.from_env()
    assert error.value.field == "AIGC_OUTPUT_CHECKS"


def test_a_run_whose_data_is_not_here_is_not_checked(digits, tmp_path):
    moved = dataclasses.replace(digits.info, config=digits.info.config.model_copy(update={"data": digits.info.config.data.model_copy(update={"name": "image-folder", "path": str(tmp_path / "gone")})}))
    with pytest.warns(aigc.errors.AigcWarning, match="output checks skipped"):
        assert OutputChecks([NearestTrainingImage()])(_batch(np.zeros((1, 8, 8, 1), dtype=np.uint8)), None, moved).parameters == {}
