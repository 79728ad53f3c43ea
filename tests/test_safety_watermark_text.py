"""The text watermark (aigc/safety/watermark/text.py): the logit hook biases exactly the key's green list,
text sampled through the policy (generate and stream alike) is detected and unmarked text is not, and
`aigc verify FILE.txt --model` reads it."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import aigc
from aigc.errors import AigcError
from aigc.generation import pipeline
from aigc.generation.text import TextRequest
from aigc.safety import SafetySettings, default_policy
from aigc.safety.settings import PUBLIC_WATERMARK_KEY
from aigc.safety.verify import verify_text
from aigc.safety.watermark.text import DELTA, GAMMA, SCHEME, TextWatermark, detect_text


@pytest.fixture(scope="module")
def lm():
    return aigc.load("gpt-shakespeare", safety=False)  # no default policy: the tests pass theirs


@pytest.fixture(scope="module")
def policy():
    return default_policy(SafetySettings(moderation=False))


def test_the_hook_adds_delta_to_the_green_list_of_the_previous_token():
    mark = TextWatermark("key-one-123")
    logits = torch.zeros(2, 100)
    biased = mark(logits.clone(), [[5, 7], []])
    green = mark.mask(7, 100)
    assert int(green.sum()) == int(GAMMA * 100)
    assert torch.equal(biased[0], DELTA * green.float()) and torch.equal(biased[1], torch.zeros(100))  # no previous token: unchanged
    assert not torch.equal(green, TextWatermark("key-two-456").mask(7, 100)) and not torch.equal(green, mark.mask(8, 100))


def test_marked_text_is_detected_and_unmarked_text_is_not(lm, policy):
    request = TextRequest(prompt="ROMEO:", max_tokens=60, seed=3, temperature=0.8)
    marked = lm.generate(request, policy=policy)
    plain = lm.generate(request)
    vocab, tokenizer = lm.module.config.vocab_size, lm.module.tokenizer
    found = detect_text(tokenizer.encode(marked.text), vocab, PUBLIC_WATERMARK_KEY)
    assert found.present and found.z > 5 and marked.parameters["watermark"].startswith(SCHEME)
    assert not detect_text(tokenizer.encode(plain.text), vocab, PUBLIC_WATERMARK_KEY).present and "watermark" not in plain.parameters
    assert not detect_text(tokenizer.encode(marked.text), vocab, "some-other-key").present
    streamed = pipeline.stream(lm.module, request, info=lm.info, policy=policy)
    assert "".join(streamed) == marked.text and streamed.artifact.texts == marked.texts  # the stream is marked the same way


def test_verify_reads_a_text_file_with_its_models_tokenizer(lm, policy, tmp_path):
    sample = lm.generate(TextRequest(prompt="JULIET:", max_tokens=60, seed=5, temperature=0.8), policy=policy)
    path = tmp_path / "sample.txt"
    path.write_text(sample.text, encoding="utf-8")
    report = verify_text(sample.text, lm.module.tokenizer, lm.module.config.vocab_size)
    assert report.marked and report.kind == "text" and "public key" in report.statements[0]
    cli = [sys.executable, "-m", "aigc", "verify", str(path)]
    missing_model = subprocess.run(cli, capture_output=True, text=True)
    assert missing_model.returncode == 2 and "--model" in missing_model.stderr and "Traceback" not in missing_model.stderr
    checked = subprocess.run([*cli, "--model", "gpt-shakespeare"], capture_output=True, text=True)
    assert checked.returncode == 0 and "present" in checked.stdout and "z =" in checked.stdout
    with pytest.raises(AigcError, match="empty"):
        verify_text("  ", lm.module.tokenizer, lm.module.config.vocab_size)
