"""CIDEr-D through pycocoevalcap (aigc.metrics.text.cider), checked against the formula of Vedantam et al. 2015
written out here for small cases: tf-idf n-gram vectors (idf over the test images' references), clipped
cosine similarity, a Gaussian length penalty (sigma 6), x 10, averaged over references and n = 1..4."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from aigc.errors import AigcError
from aigc.metrics.text import cider

pytest.importorskip("pycocoevalcap", reason="CIDEr needs pycocoevalcap: pip install 'aigc[captioning]'")


def cider_d_by_hand(hypotheses: list[list[str]], references: list[list[list[str]]], sigma: float = 6.0) -> list[float]:
    def grams(tokens, n):
        return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))

    log_images = math.log(len(hypotheses))
    document_frequency = Counter(g for refs in references for g in set(g for r in refs for n in range(1, 5) for g in grams(r, n)))

    def vectors(tokens):
        out = []
        for n in range(1, 5):
            counts = grams(tokens, n)
            vector = {g: c * (log_images - math.log(max(1.0, document_frequency[g]))) for g, c in counts.items()}
            out.append((vector, math.sqrt(sum(v * v for v in vector.values()))))
        return out

    scores = []
    for hypothesis, refs in zip(hypotheses, references):
        hyp_vectors, total = vectors(hypothesis), 0.0
        for reference in refs:
            penalty = math.exp(-((len(hypothesis) - len(reference)) ** 2) / (2 * sigma**2))
            per_n = []
            for (hv, hn), (rv, rn) in zip(hyp_vectors, vectors(reference)):
                dot = sum(min(value, rv.get(g, 0.0)) * rv.get(g, 0.0) for g, value in hv.items())  # clipped ("-D")
                per_n.append(penalty * dot / (hn * rn) if hn and rn else 0.0)
            total += 10 * sum(per_n) / 4
        scores.append(total / len(refs))
    return scores


CAPTIONS = ["a cat on a mat", "a dog is running", "the number seven"]
REFERENCES = [["a cat sits on a mat", "there is a cat on the mat"], ["a dog runs in the park", "the dog is running"], ["the digit seven", "a seven"]]


def test_cider_is_the_published_formula():
    result = cider(CAPTIONS, REFERENCES)
    expected = cider_d_by_hand([c.split() for c in CAPTIONS], [[r.split() for r in refs] for refs in REFERENCES])
    assert result.per_hypothesis == pytest.approx(expected, rel=1e-9)
    assert result.score == pytest.approx(100 * sum(expected) / len(expected))
    assert "pycocoevalcap" in result.implementation


def test_chinese_is_split_into_characters_and_case_does_not_count():
    chinese = cider(["手写的数字七", "数字一"], [["手写的数字七", "数字七"], ["数字一", "写了一个一"]], tokenizer="zh")
    spaced = cider(["手 写 的 数 字 七", "数 字 一"], [["手 写 的 数 字 七", "数 字 七"], ["数 字 一", "写 了 一 个 一"]], tokenizer="13a")
    assert chinese.per_hypothesis == pytest.approx(spaced.per_hypothesis)
    assert cider(["A Cat"], [["a cat"]]).per_hypothesis == cider(["a cat"], [["a cat"]]).per_hypothesis


def test_a_better_caption_scores_higher_and_bad_input_is_named():
    good = cider(["a dog is running", "a cat on a mat"], [["the dog is running"], ["a cat on the mat"]])
    bad = cider(["a cat on a mat", "a dog is running"], [["the dog is running"], ["a cat on the mat"]])
    assert good.score > bad.score
    with pytest.raises(AigcError, match="tokenizer"):
        cider(["x"], [["x"]], tokenizer="spm")
    with pytest.raises(AigcError):
        cider(["x", "y"], [["x"]])
