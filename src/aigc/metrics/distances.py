"""Distances between two sets of features: Fréchet distance and kernel (KID) distance.

Both compare feature vectors of real and generated samples. They are FID and KID only when the features
come from Inception-v3's pool layer; with another network the score must be labelled with that network
(e.g. "FD-EffNetLite0"), which is the caller's job (`metrics/features.py`). Everything here is float64.

- Fréchet distance: Heusel et al. 2017, https://arxiv.org/abs/1706.08500 (computed as pytorch-fid does).
- Kernel distance: Bińkowski et al. 2018, https://arxiv.org/abs/1801.01401 (unbiased MMD^2, cubic kernel).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np
import torch

from aigc.errors import AigcError

# Relative error ||X @ X - A||_F / ||A||_F above which sqrtm(A) is treated as failed (near-singular A).
_SQRTM_TOLERANCE = 1e-5
# pytorch-fid's limit for the imaginary part left on the diagonal of sqrtm(sigma_a @ sigma_b).
_IMAGINARY_TOLERANCE = 1e-3


def is_int(value: Any) -> bool:
    """True for Python and numpy integers, False for bools and floats."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def as_feature_matrix(features: Any, *, field: str, min_samples: int = 1) -> np.ndarray:
    """Check that `features` is a finite (N, D) matrix with N >= min_samples; return it as float64 numpy.

    Accepts a numpy array, a torch tensor (any device, any float dtype) or nested lists.
    """
    if isinstance(features, torch.Tensor):
        features = features.detach().to("cpu", torch.float64).numpy()
    try:
        matrix = np.asarray(features, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise AigcError(
            f"expected a numeric (N, D) feature matrix, got {type(features).__name__} ({error})",
            field=field,
            fix="pass a numpy array or torch tensor of shape (num_samples, feature_dim)",
        ) from None
    if matrix.ndim != 2 or matrix.shape[1] == 0:
        raise AigcError(
            f"expected a 2-D feature matrix of shape (num_samples, feature_dim), got shape {matrix.shape}",
            field=field,
            fix="flatten each sample's features to one row, e.g. features.reshape(len(features), -1)",
        )
    if matrix.shape[0] < min_samples:
        raise AigcError(
            f"expected at least {min_samples} samples, got {matrix.shape[0]}",
            field=field,
            fix=f"compute features for at least {min_samples} samples (10,000 is the usual protocol)",
        )
    if not np.isfinite(matrix).all():
        bad = int((~np.isfinite(matrix)).any(axis=1).sum())
        raise AigcError(
            f"{bad} of {matrix.shape[0]} feature rows contain NaN or infinity",
            field=field,
            fix="check the generator's outputs and the feature network (NaNs usually mean a diverged model)",
        )
    return matrix


def check_same_dim(a: np.ndarray, b: np.ndarray, *, field: str) -> None:
    """Raise unless two feature matrices (or mean vectors) have the same feature dimension."""
    if a.shape[-1] != b.shape[-1]:
        raise AigcError(
            f"real and generated features must have the same dimension, got {a.shape[-1]} and {b.shape[-1]}",
            field=field,
            fix="compute both sets with the same feature network and layer",
        )


# ---------------------------------------------------------------------------------------------------------
# Fréchet distance


@dataclass(frozen=True)
class FeatureStats:
    """Mean and covariance of a feature set: all a Fréchet distance needs, and what reference caches store."""

    mean: np.ndarray  # (D,) float64
    covariance: np.ndarray  # (D, D) float64, unbiased (divided by N - 1)
    count: int  # number of samples the statistics were computed from


def feature_statistics(features: Any) -> FeatureStats:
    """Mean and unbiased covariance (N - 1) of an (N, D) feature matrix, in float64. Needs N >= 2."""
    matrix = as_feature_matrix(features, field="features", min_samples=2)
    mean = matrix.mean(axis=0)
    centered = matrix - mean
    covariance = centered.T @ centered / (matrix.shape[0] - 1)  # (D, D), same as np.cov(rowvar=False)
    return FeatureStats(mean=mean, covariance=covariance, count=int(matrix.shape[0]))


def _check_stats(stats: FeatureStats, field: str) -> None:
    if not isinstance(stats, FeatureStats):
        raise AigcError(
            f"expected FeatureStats, got {type(stats).__name__}",
            field=field,
            fix="pass feature_statistics(features), not the raw features",
        )
    dim = stats.mean.shape[0] if stats.mean.ndim == 1 else -1
    if stats.mean.ndim != 1 or stats.covariance.shape != (dim, dim):
        raise AigcError(
            f"mean must be (D,) and covariance (D, D), got {stats.mean.shape} and {stats.covariance.shape}",
            field=field,
            fix="build the statistics with feature_statistics(features)",
        )
    if not (np.isfinite(stats.mean).all() and np.isfinite(stats.covariance).all()):
        raise AigcError(
            "statistics contain NaN or infinity",
            field=field,
            fix="recompute them from finite features (a cached reference file may be corrupt)",
        )


def _sqrtm(matrix: np.ndarray) -> tuple[np.ndarray, float]:
    """Principal square root of a square matrix and its relative error (inf when it failed)."""
    from scipy import linalg  # lazy: scipy is only needed here

    with warnings.catch_warnings():  # scipy warns on singular input; the error is measured right below
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        root = linalg.sqrtm(matrix)
    if not np.isfinite(root).all():
        return root, float("inf")
    scale = max(float(np.linalg.norm(matrix)), np.finfo(np.float64).tiny)
    return root, float(np.linalg.norm(root @ root - matrix) / scale)


def frechet_distance(stats_a: FeatureStats, stats_b: FeatureStats, *, eps: float = 1e-6) -> float:
    """Fréchet distance between two Gaussians fitted to features (FID for Inception-v3 pool features).

    d^2 = ||mu_a - mu_b||^2 + Tr(sigma_a + sigma_b - 2 sqrt(sigma_a sigma_b))   (Heusel et al. 2017, eq. 6)

    As in pytorch-fid: when sigma_a @ sigma_b is near-singular (its square root fails or is inaccurate,
    typical with fewer samples than feature dimensions), `eps` * I is added to both covariances; a tiny
    imaginary part from numerical error is dropped, a large one is an error.
    """
    _check_stats(stats_a, "stats_a")
    _check_stats(stats_b, "stats_b")
    check_same_dim(stats_a.mean, stats_b.mean, field="stats_b")
    mean_diff = stats_a.mean - stats_b.mean
    sigma_a, sigma_b = stats_a.covariance, stats_b.covariance

    covmean, error = _sqrtm(sigma_a @ sigma_b)
    if error > _SQRTM_TOLERANCE:
        offset = np.eye(sigma_a.shape[0]) * eps  # regularise a (near-)singular product
        covmean, error = _sqrtm((sigma_a + offset) @ (sigma_b + offset))
        if not np.isfinite(covmean).all():
            raise AigcError(
                f"the matrix square root of the covariance product failed even with eps={eps}",
                field="stats",
                fix="use more samples than feature dimensions (10,000 is the usual protocol) or a larger eps",
            )
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=_IMAGINARY_TOLERANCE):
            largest = float(np.max(np.abs(covmean.imag)))
            raise AigcError(
                f"sqrt(sigma_a @ sigma_b) has a large imaginary component ({largest:.3g}); the "
                "covariances are too ill-conditioned for a meaningful distance",
                field="stats",
                fix="use more samples than feature dimensions (10,000 is the usual protocol)",
            )
        covmean = covmean.real

    distance = mean_diff @ mean_diff + np.trace(sigma_a) + np.trace(sigma_b) - 2.0 * np.trace(covmean)
    return float(distance)


# ---------------------------------------------------------------------------------------------------------
# Kernel distance (KID)


@dataclass(frozen=True)
class KernelDistance:
    """Unbiased MMD^2 with the cubic polynomial kernel, averaged over random subsets (KID for Inception)."""

    mean: float  # mean of the per-subset MMD^2 estimates; can be slightly negative (unbiased)
    std: float  # standard deviation of the per-subset estimates (numpy's default ddof=0, as torch-fidelity)
    subsets: int  # number of subsets averaged
    subset_size: int  # samples drawn (without replacement) from each set for every subset


def _polynomial_mmd2(x: torch.Tensor, y: torch.Tensor) -> float:
    """Unbiased MMD^2 of two (m, D) samples with k(x, y) = (x.y / D + 1)^3 (Bińkowski et al. 2018, eq. 4)."""
    m, dim = x.shape
    k_xx = (x @ x.T / dim + 1) ** 3  # (m, m)
    k_yy = (y @ y.T / dim + 1) ** 3  # (m, m)
    k_xy = (x @ y.T / dim + 1) ** 3  # (m, m)
    # Drop the diagonals k(x_i, x_i): keeping them is the biased V-statistic, positive even for equal laws.
    within_x = (k_xx.sum() - k_xx.diagonal().sum()) / (m * (m - 1))
    within_y = (k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    across = k_xy.sum() / (m * m)
    return float(within_x + within_y - 2 * across)


def kernel_distance(
    real_features: Any,
    fake_features: Any,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    generator: torch.Generator | None = None,
) -> KernelDistance:
    """Kernel distance (KID for Inception-v3 features): unbiased MMD^2, cubic kernel, over random subsets.

    Each of `subsets` rounds draws `subset_size` rows without replacement from each set and computes the
    unbiased MMD^2; the result is the mean and standard deviation of those estimates (the protocol of
    Bińkowski et al. and torch-fidelity: 100 subsets of 1000). `generator` seeds the draws; without one, a
    generator seeded with 0 is used, so the score is deterministic.
    """
    if not is_int(subsets) or subsets < 1:
        raise AigcError(f"expected a positive integer, got {subsets!r}", field="subsets", fix="use subsets=100")
    if not is_int(subset_size) or subset_size < 2:
        raise AigcError(
            f"expected an integer >= 2 (the unbiased estimate needs pairs), got {subset_size!r}",
            field="subset_size",
            fix="use subset_size=1000 (the standard protocol) or at least 2",
        )
    real = as_feature_matrix(real_features, field="real_features")
    fake = as_feature_matrix(fake_features, field="fake_features")
    check_same_dim(real, fake, field="fake_features")
    for name, matrix in (("real_features", real), ("fake_features", fake)):
        if matrix.shape[0] < subset_size:
            raise AigcError(
                f"KID draws subset_size={subset_size} samples per subset, but only {matrix.shape[0]} were given",
                field=name,
                fix=f"pass at least {subset_size} samples, or lower subset_size to at most {matrix.shape[0]}",
            )
    if generator is None:
        generator = torch.Generator().manual_seed(0)

    real_t, fake_t = torch.from_numpy(real), torch.from_numpy(fake)
    estimates = np.empty(subsets, dtype=np.float64)
    for index in range(subsets):
        real_rows = torch.randperm(real_t.shape[0], generator=generator)[:subset_size]
        fake_rows = torch.randperm(fake_t.shape[0], generator=generator)[:subset_size]
        estimates[index] = _polynomial_mmd2(real_t[real_rows], fake_t[fake_rows])
    return KernelDistance(
        mean=float(estimates.mean()), std=float(estimates.std()), subsets=int(subsets), subset_size=int(subset_size)
    )
