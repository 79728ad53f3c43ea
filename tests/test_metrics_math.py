"""Metric math against cases with known answers: closed forms, hand-computed values, published examples.

Pure functions on synthetic features, probabilities and strings; no feature network, a few seconds total.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from aigc.errors import AigcError
from aigc.metrics import (
    FeatureStats,
    bits_per_character,
    bleu,
    feature_statistics,
    frechet_distance,
    inception_score,
    kernel_distance,
    longest_common_subsequence_length,
    perplexity,
    precision_recall_density_coverage,
    rouge_l,
)
from conftest import has_module, require


def gaussian(rng: np.random.Generator, count: int, dim: int, shift: float = 0.0) -> np.ndarray:
    return rng.normal(size=(count, dim)) + shift


def clustered_features(rng: np.random.Generator, count: int, dim: int = 32) -> np.ndarray:
    """Stand-in for real-image features: a mixture of 10 Gaussian clusters with a fixed layout."""
    centres = np.random.default_rng(1234).normal(scale=3.0, size=(10, dim))
    return centres[rng.integers(0, 10, size=count)] + rng.normal(scale=0.5, size=(count, dim))


# ---------------------------------------------------------------------------------------------------------
# Feature statistics and Fréchet distance


def test_feature_statistics_are_float64_mean_and_unbiased_covariance():
    features = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    stats = feature_statistics(torch.from_numpy(features))
    assert stats.count == 50
    assert stats.mean.dtype == np.float64 and stats.covariance.dtype == np.float64
    np.testing.assert_allclose(stats.mean, features.astype(np.float64).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.covariance, np.cov(features.astype(np.float64), rowvar=False), rtol=1e-10)


def test_frechet_distance_of_diagonal_gaussians_matches_closed_form():
    rng = np.random.default_rng(1)
    mu_a, mu_b = rng.normal(size=6), rng.normal(size=6)
    var_a, var_b = rng.uniform(0.1, 3.0, size=6), rng.uniform(0.1, 3.0, size=6)
    expected = np.sum((mu_a - mu_b) ** 2) + np.sum(var_a + var_b - 2 * np.sqrt(var_a * var_b))
    got = frechet_distance(FeatureStats(mu_a, np.diag(var_a), 100), FeatureStats(mu_b, np.diag(var_b), 100))
    assert got == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_of_full_covariances_matches_eigenvalue_form():
    # Tr sqrt(S_a S_b) = sum of square roots of the eigenvalues of S_a S_b (real and >= 0 for SPD S_a, S_b).
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    sigma_a, sigma_b = a @ a.T + 0.1 * np.eye(5), b @ b.T + 0.1 * np.eye(5)
    mu_a, mu_b = rng.normal(size=5), rng.normal(size=5)
    trace_sqrt = np.sqrt(np.linalg.eigvals(sigma_a @ sigma_b).real).sum()
    expected = np.sum((mu_a - mu_b) ** 2) + np.trace(sigma_a) + np.trace(sigma_b) - 2 * trace_sqrt
    got = frechet_distance(FeatureStats(mu_a, sigma_a, 10), FeatureStats(mu_b, sigma_b, 10))
    assert got == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_of_identical_statistics_is_zero():
    stats = feature_statistics(np.random.default_rng(3).normal(size=(200, 16)))
    assert abs(frechet_distance(stats, stats)) < 1e-9


def test_frechet_distance_survives_singular_covariances_with_the_eps_offset():
    # 10 samples in 32 dimensions: rank-9 covariances, a singular product; pytorch-fid adds eps * I.
    rng = np.random.default_rng(4)
    stats_a = feature_statistics(rng.normal(size=(10, 32)))
    stats_b = feature_statistics(rng.normal(size=(10, 32)) + 1.0)
    assert abs(frechet_distance(stats_a, stats_a)) < 1e-3
    distance = frechet_distance(stats_a, stats_b)
    assert math.isfinite(distance) and distance > 32 * 0.9  # at least most of ||mu_a - mu_b||^2 = 32


def test_frechet_distance_retries_with_an_eps_offset_when_the_square_root_fails(monkeypatch):
    from aigc.metrics import distances

    exact_sqrtm, seen = distances._sqrtm, []

    def fails_first(matrix):  # stands in for a product whose square root scipy cannot compute
        seen.append(matrix)
        return (np.full_like(matrix, np.nan), float("inf")) if len(seen) == 1 else exact_sqrtm(matrix)

    monkeypatch.setattr(distances, "_sqrtm", fails_first)
    var_a, var_b, eps = np.array([1.0, 2.0]), np.array([3.0, 4.0]), 1e-3
    stats_a, stats_b = FeatureStats(np.zeros(2), np.diag(var_a), 10), FeatureStats(np.zeros(2), np.diag(var_b), 10)
    got = frechet_distance(stats_a, stats_b, eps=eps)
    np.testing.assert_allclose(seen[1], np.diag((var_a + eps) * (var_b + eps)))  # pytorch-fid's eps * I offset
    assert got == pytest.approx(np.sum(var_a + var_b - 2 * np.sqrt((var_a + eps) * (var_b + eps))), rel=1e-12)

    monkeypatch.setattr(distances, "_sqrtm", lambda matrix: (np.full_like(matrix, np.nan), float("inf")))
    with pytest.raises(AigcError, match="failed even with eps"):
        frechet_distance(stats_a, stats_b)


def test_frechet_distance_rejects_a_large_imaginary_component():
    # A "covariance" with negative eigenvalues (e.g. a corrupt cache) has no real square root.
    stats_a = FeatureStats(np.zeros(3), np.eye(3), 10)
    stats_b = FeatureStats(np.zeros(3), -np.eye(3), 10)
    with pytest.raises(AigcError, match="imaginary"):
        frechet_distance(stats_a, stats_b)


def test_real_vs_real_scores_far_below_real_vs_noise():
    rng = np.random.default_rng(5)
    real = clustered_features(rng, 2000)
    real_a, real_b = real[:1000], real[1000:]
    noise = rng.uniform(real.min(), real.max(), size=(1000, real.shape[1]))

    same = frechet_distance(feature_statistics(real_a), feature_statistics(real_b))
    different = frechet_distance(feature_statistics(real_a), feature_statistics(noise))
    assert same < 0.02 * different

    kid_same = kernel_distance(real_a, real_b, subsets=10, subset_size=500)
    kid_different = kernel_distance(real_a, noise, subsets=10, subset_size=500)
    assert abs(kid_same.mean) < 0.02 * kid_different.mean


# ---------------------------------------------------------------------------------------------------------
# Kernel distance (KID)


def test_kid_of_the_same_distribution_is_near_zero_and_a_shift_is_clearly_positive():
    rng = np.random.default_rng(6)
    real, fake = gaussian(rng, 1000, 8), gaussian(rng, 1000, 8)
    same = kernel_distance(real, fake, subsets=20, subset_size=200)
    assert abs(same.mean) < 2 * same.std
    shifted = kernel_distance(real, gaussian(rng, 1000, 8, shift=0.5), subsets=20, subset_size=200)
    assert shifted.mean > 5 * shifted.std and shifted.mean > 20 * abs(same.mean)
    assert (same.subsets, same.subset_size) == (20, 200)


def test_kid_is_unbiased_over_many_draws_where_the_v_statistic_is_not():
    rng = np.random.default_rng(7)
    draws, size, dim = 300, 20, 4
    estimates, biased = [], []
    for _ in range(draws):
        x, y = gaussian(rng, size, dim), gaussian(rng, size, dim)
        estimates.append(kernel_distance(x, y, subsets=1, subset_size=size).mean)
        # The biased V-statistic keeps the diagonals k(x_i, x_i); it is what a broken estimator returns.
        k_xx, k_yy, k_xy = ((p @ q.T / dim + 1) ** 3 for p, q in ((x, x), (y, y), (x, y)))
        biased.append(k_xx.mean() + k_yy.mean() - 2 * k_xy.mean())
    standard_error = np.std(estimates) / math.sqrt(draws)
    assert abs(np.mean(estimates)) < 4 * standard_error
    assert np.mean(biased) > 20 * standard_error  # the check above has the power to catch a biased estimator


def test_kid_is_deterministic_for_a_seed():
    rng = np.random.default_rng(8)
    real, fake = gaussian(rng, 300, 4), gaussian(rng, 300, 4, shift=0.2)
    first = kernel_distance(real, fake, subsets=5, subset_size=100, generator=torch.Generator().manual_seed(3))
    again = kernel_distance(real, fake, subsets=5, subset_size=100, generator=torch.Generator().manual_seed(3))
    other = kernel_distance(real, fake, subsets=5, subset_size=100, generator=torch.Generator().manual_seed(4))
    assert first == again
    assert first.mean != other.mean
    assert kernel_distance(real, fake, subsets=5, subset_size=100) == kernel_distance(
        real, fake, subsets=5, subset_size=100
    )


# ---------------------------------------------------------------------------------------------------------
# Inception Score


def test_inception_score_of_confident_uniform_class_predictions_is_the_number_of_classes():
    probabilities = np.eye(10)[np.arange(1000) % 10]  # one-hot, every class equally often in every split
    score = inception_score(probabilities, splits=10)
    assert score.mean == pytest.approx(10.0, rel=1e-9)
    assert score.std == pytest.approx(0.0, abs=1e-9)
    assert score.splits == 10


def test_inception_score_of_identical_predictions_is_one():
    row = np.array([0.1, 0.2, 0.3, 0.4])
    score = inception_score(np.tile(row, (100, 1)), splits=4)
    assert score.mean == pytest.approx(1.0, abs=1e-12)


def test_inception_score_hand_computed_with_zero_probabilities():
    # p(y) = (0.75, 0.25); KL_1 = log(1 / 0.75); KL_2 = 0.5 log(0.5 / 0.75) + 0.5 log(0.5 / 0.25).
    probabilities = np.array([[1.0, 0.0], [0.5, 0.5]])
    kl_1 = math.log(1 / 0.75)
    kl_2 = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    score = inception_score(probabilities, splits=1)
    assert score.mean == pytest.approx(math.exp((kl_1 + kl_2) / 2), rel=1e-12)


def test_inception_score_is_stable_for_tiny_probabilities():
    probabilities = np.full((20, 3), 1e-300)
    probabilities[np.arange(20), np.arange(20) % 3] = 1.0 - 2e-300
    score = inception_score(probabilities, splits=2)
    assert math.isfinite(score.mean) and score.mean == pytest.approx(3.0, rel=0.05)


# ---------------------------------------------------------------------------------------------------------
# Precision, recall, density, coverage


def brute_force_prdc(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float, float, float]:
    """The reference formulas of clovaai/generative-evaluation-prdc, with full distance matrices."""

    def distances(a, b):
        return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))

    real_radii = np.sort(distances(real, real), axis=1)[:, k]
    fake_radii = np.sort(distances(fake, fake), axis=1)[:, k]
    real_fake = distances(real, fake)  # (N, M)
    precision = (real_fake < real_radii[:, None]).any(axis=0).mean()
    recall = (real_fake < fake_radii[None, :]).any(axis=1).mean()
    density = (1.0 / k) * (real_fake < real_radii[:, None]).sum(axis=0).mean()
    coverage = (real_fake.min(axis=1) < real_radii).mean()
    return precision, recall, density, coverage


def test_prdc_of_identical_sets_is_one():
    features = np.random.default_rng(9).normal(size=(300, 8))
    result = precision_recall_density_coverage(features, features.copy())
    assert result.precision == result.recall == result.coverage == 1.0
    assert result.density == pytest.approx(1.0, abs=0.25)
    assert result.k == 5


def test_prdc_of_disjoint_far_apart_sets_is_zero():
    rng = np.random.default_rng(10)
    result = precision_recall_density_coverage(gaussian(rng, 200, 8), gaussian(rng, 200, 8, shift=100.0))
    assert (result.precision, result.recall, result.density, result.coverage) == (0.0, 0.0, 0.0, 0.0)


def test_prdc_in_chunks_matches_the_reference_formulas():
    rng = np.random.default_rng(11)
    real, fake = gaussian(rng, 157, 6), gaussian(rng, 123, 6, shift=0.4)
    expected = brute_force_prdc(real, fake, k=3)
    for chunk_size in (7, 1024):
        result = precision_recall_density_coverage(real, fake, k=3, chunk_size=chunk_size)
        got = (result.precision, result.recall, result.density, result.coverage)
        assert got == pytest.approx(expected, abs=1e-12)


# ---------------------------------------------------------------------------------------------------------
# Perplexity, bits per character, BLEU, ROUGE-L


def test_perplexity_and_bits_per_character_hand_computed():
    # Four tokens predicted with probabilities 1/2, 1/4, 1/8, 1/2: NLL = (1 + 2 + 3 + 1) ln 2 = 7 ln 2 nats.
    total_nll = 7 * math.log(2)
    assert perplexity(total_nll, 4) == pytest.approx(2 ** (7 / 4), rel=1e-12)
    assert bits_per_character(total_nll, 4) == pytest.approx(7 / 4, rel=1e-12)
    assert bits_per_character(total_nll, 7) == pytest.approx(1.0, rel=1e-12)
    assert perplexity(0.0, 10) == 1.0
    assert perplexity(1e6, 1) == math.inf


def test_bleu_matches_sacrebleus_documented_example():
    require(has_module("sacrebleu"), "sacrebleu (pip install sacrebleu)")
    # sacrebleu's README: BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)
    hypotheses = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]
    references = [
        ["The dog bit the man.", "The dog had bit the man."],
        ["It was not unexpected.", "No one was surprised."],
        ["The man bit him first.", "The man had bitten the dog."],
    ]
    score = bleu(hypotheses, references)
    assert score.score == pytest.approx(48.53, abs=0.005)
    assert [round(p, 1) for p in score.precisions] == [82.4, 50.0, 45.5, 37.5]
    assert score.brevity_penalty == pytest.approx(0.943, abs=5e-4)
    assert (score.hypothesis_length, score.reference_length) == (17, 18)
    assert score.tokenizer == "13a" and "tok:13a" in score.signature and "nrefs:2" in score.signature


def test_bleu_hand_computed_brevity_penalty_in_english_and_chinese():
    require(has_module("sacrebleu"), "sacrebleu (pip install sacrebleu)")
    # A hypothesis that is a prefix of its reference: every n-gram precision is 100%, so
    # BLEU = 100 * BP = 100 * exp(1 - ref_len / hyp_len).
    english = bleu(["the cat sat on the mat"], ["the cat sat on the mat today"])
    assert english.score == pytest.approx(100 * math.exp(1 - 7 / 6), rel=1e-9)
    chinese = bleu(["我爱北京天安门"], ["我爱北京天安门广场"], tokenizer="zh")  # zh: one token per character
    assert (chinese.hypothesis_length, chinese.reference_length) == (7, 9)
    assert chinese.score == pytest.approx(100 * math.exp(1 - 9 / 7), rel=1e-9)
    assert "tok:zh" in chinese.signature
    unsegmented = bleu(["我爱北京天安门"], ["我爱北京天安门广场"])  # 13a sees one "word" each: no match
    assert unsegmented.hypothesis_length == 1 and unsegmented.score == 0.0


def test_rouge_l_hand_computed_in_english_words():
    # LCS("the cat sat on the mat", "the cat is on the red mat today") = "the cat on the mat" = 5 words.
    hypothesis, reference = "the cat sat on the mat", "the cat is on the red mat today"
    assert longest_common_subsequence_length(hypothesis.split(), reference.split()) == 5
    score = rouge_l([hypothesis], [reference])
    assert score.precision == pytest.approx(5 / 6)
    assert score.recall == pytest.approx(5 / 8)
    assert score.fmeasure == pytest.approx(5 / 7)  # 2 P R / (P + R)
    assert score.tokenizer == "whitespace"


def test_rouge_l_hand_computed_in_chinese_characters():
    # LCS("我爱北京天安门", "北京的天安门很大") = "北京天安门" = 5 characters; P = 5/7, R = 5/8, F1 = 2/3.
    score = rouge_l(["我爱北京天安门"], ["北京的天安门很大"], tokenizer="chars")
    assert (score.precision, score.recall) == (pytest.approx(5 / 7), pytest.approx(5 / 8))
    assert score.fmeasure == pytest.approx(2 / 3)
    assert rouge_l(["我爱北京天安门"], ["北京的天安门很大"]).fmeasure == 0.0  # one "word" each: no overlap


def test_rouge_l_takes_the_best_reference_and_averages_hypotheses():
    score = rouge_l(["a b c", "x y"], [["q", "a b c"], "x z"])
    assert score.fmeasure == pytest.approx((1.0 + 0.5) / 2)


# ---------------------------------------------------------------------------------------------------------
# Bad input: an AigcError that names the field and says how to fix it


def raises_with_fix(field: str, function, *args, **kwargs) -> AigcError:
    with pytest.raises(AigcError) as caught:
        function(*args, **kwargs)
    assert caught.value.field == field and caught.value.fix
    return caught.value


def test_bad_feature_input_is_explained():
    rng = np.random.default_rng(12)
    real = gaussian(rng, 100, 8)
    error = raises_with_fix("real_features", kernel_distance, real[:50], real, subsets=2, subset_size=100)
    assert "100" in str(error) and "subset_size" in error.fix
    raises_with_fix("fake_features", kernel_distance, real, gaussian(rng, 100, 4), subset_size=50)
    with_nan = real.copy()
    with_nan[3, 2] = np.nan
    assert "NaN" in str(raises_with_fix("fake_features", kernel_distance, real, with_nan, subset_size=50))
    raises_with_fix("subset_size", kernel_distance, real, real, subset_size=1)
    raises_with_fix("subsets", kernel_distance, real, real, subsets=0, subset_size=50)
    raises_with_fix("features", feature_statistics, real[:1])
    raises_with_fix("features", feature_statistics, real[0])
    raises_with_fix("features", feature_statistics, with_nan)
    mismatched = (feature_statistics(real), feature_statistics(gaussian(rng, 100, 4)))
    raises_with_fix("stats_b", frechet_distance, *mismatched)
    raises_with_fix("stats_a", frechet_distance, real, feature_statistics(real))


def test_bad_prdc_input_is_explained():
    rng = np.random.default_rng(13)
    real = gaussian(rng, 20, 4)
    error = raises_with_fix("fake_features", precision_recall_density_coverage, real, real[:5], k=5)
    assert "k <= 4" in error.fix
    raises_with_fix("real_features", precision_recall_density_coverage, real[:3], real, k=3)
    raises_with_fix("fake_features", precision_recall_density_coverage, real, gaussian(rng, 20, 3))
    raises_with_fix("k", precision_recall_density_coverage, real, real, k=0)


def test_bad_probabilities_are_explained():
    logits = np.random.default_rng(14).normal(size=(20, 5))
    assert "softmax" in raises_with_fix("probabilities", inception_score, logits, splits=2).fix
    raises_with_fix("probabilities", inception_score, np.full((20, 5), 0.5), splits=2)  # rows sum to 2.5
    raises_with_fix("probabilities", inception_score, np.full((5, 4), 0.25), splits=10)  # fewer than splits
    raises_with_fix("splits", inception_score, np.full((5, 4), 0.25), splits=0)


def test_bad_text_input_is_explained():
    raises_with_fix("references", rouge_l, ["a b"], [[]])
    raises_with_fix("references", rouge_l, ["a b"], [""])
    raises_with_fix("references", rouge_l, ["a b", "c"], ["a b"])
    raises_with_fix("hypotheses", rouge_l, "a b", ["a b"])
    raises_with_fix("hypotheses", rouge_l, [], [])
    raises_with_fix("tokenizer", rouge_l, ["a"], ["a"], tokenizer="spaces")
    raises_with_fix("tokenizer", bleu, ["a"], ["a"], tokenizer="spm")  # would download a model
    raises_with_fix("references", bleu, ["a"], [[]])
    raises_with_fix("token_count", perplexity, 3.0, 0)
    raises_with_fix("total_nll", perplexity, -1.0, 3)
    raises_with_fix("total_nll", bits_per_character, float("nan"), 3)
