"""Inception Score from class probabilities (Salimans et al. 2016, https://arxiv.org/abs/1606.03498).

IS = exp( E_x KL(p(y|x) || p(y)) ), with p(y) the mean prediction over the split. It rewards confident
predictions (low entropy of p(y|x)) spread over many classes (high entropy of p(y)); it lies in [1, K].
The probabilities may come from any classifier; the score is "IS" proper only for Inception-v3's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from aigc.errors import AigcError
from aigc.metrics.distances import as_feature_matrix, is_int

# Rows of a softmax computed in float32 sum to 1 within ~1e-6; anything further off is not probabilities.
_ROW_SUM_TOLERANCE = 1e-3


@dataclass(frozen=True)
class InceptionScore:
    """Mean and standard deviation of the Inception Score over equal splits of the samples."""

    mean: float  # mean over splits of exp(E_x KL(p(y|x) || p(y))); in [1, num_classes]
    std: float  # standard deviation over splits (numpy's default ddof=0, as the original code)
    splits: int  # number of contiguous splits the samples were cut into


def _split_score(log_probs: np.ndarray) -> float:
    """exp(mean KL(p(y|x) || p(y))) for one split of (n, K) log-probabilities, entirely in log space."""
    from scipy.special import logsumexp  # lazy: scipy is only needed when a score is computed

    n = log_probs.shape[0]
    log_marginal = logsumexp(log_probs, axis=0) - np.log(n)  # (K,) log p(y) = log mean_x p(y|x)
    probs = np.exp(log_probs)  # (n, K)
    with np.errstate(invalid="ignore"):  # 0 * (-inf) where a class has p = 0: that term is 0 by convention
        terms = np.where(probs > 0, probs * (log_probs - log_marginal), 0.0)
    kl_per_sample = terms.sum(axis=1)  # (n,) KL(p(y|x_i) || p(y))
    return float(np.exp(kl_per_sample.mean()))


def inception_score(probabilities: Any, *, splits: int = 10) -> InceptionScore:
    """Inception Score of (N, K) class probabilities (softmax outputs), mean and std over `splits`.

    Samples are cut into `splits` contiguous, nearly equal parts, as in the original implementation; the
    usual protocol is 50,000 samples in 10 splits.
    """
    if not is_int(splits) or splits < 1:
        raise AigcError(f"expected a positive integer, got {splits!r}", field="splits", fix="use splits=10")
    probs = as_feature_matrix(probabilities, field="probabilities", min_samples=int(splits))
    if (probs < 0).any():
        raise AigcError(
            "class probabilities must be non-negative; these look like logits",
            field="probabilities",
            fix="pass softmax(logits, dim=1), not the logits",
        )
    row_sums = probs.sum(axis=1)
    worst = float(np.abs(row_sums - 1).max())
    if worst > _ROW_SUM_TOLERANCE:
        raise AigcError(
            f"each row must sum to 1 (class probabilities), but one is off by {worst:.3g}",
            field="probabilities",
            fix="pass softmax(logits, dim=1) over the class dimension",
        )

    with np.errstate(divide="ignore"):  # log(0) = -inf is exact and handled by logsumexp and the mask
        log_probs = np.log(probs) - np.log(row_sums)[:, None]  # renormalise rounding away, in log space
    count = probs.shape[0]
    scores = np.array(
        [_split_score(log_probs[i * count // splits : (i + 1) * count // splits]) for i in range(splits)]
    )
    return InceptionScore(mean=float(scores.mean()), std=float(scores.std()), splits=int(splits))
