"""Precision, recall, density and coverage of generated features (Naeem et al. 2020).

Reliable Fidelity and Diversity Metrics for Generative Models, https://arxiv.org/abs/2002.09797 — the
same definitions as the authors' `prdc` package (clovaai/generative-evaluation-prdc). Each sample gets a
k-NN ball whose radius is the distance to its k-th nearest neighbour in its own set:

- precision: share of fake samples inside at least one real ball (fidelity).
- recall:    share of real samples inside at least one fake ball (diversity).
- density:   mean number of real balls containing a fake sample, divided by k (fidelity; ~1 when equal).
- coverage:  share of real samples whose ball contains at least one fake sample (diversity).

Distances are computed in row chunks (one matmul per chunk, like `torch.cdist`'s fast path), so memory is
O(chunk_size * N), not O(N^2): 10k x 10k features never build a 10k x 10k matrix (about 40 s and 1 GB
peak for 10k x 10k x 2048 in float64 on 2 CPU cores).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from aigc.errors import AigcError
from aigc.metrics.distances import as_feature_matrix, check_same_dim, is_int


@dataclass(frozen=True)
class PRDC:
    """Precision, recall, density and coverage, and the k that defined the neighbourhoods."""

    precision: float  # in [0, 1]
    recall: float  # in [0, 1]
    density: float  # >= 0, unbounded above; about 1 when the two sets come from the same distribution
    coverage: float  # in [0, 1]
    k: int  # neighbourhood size (the paper's default is 5)


def _squared_distances(rows: torch.Tensor, others: torch.Tensor, others_sq_norms: torch.Tensor) -> torch.Tensor:
    """(R, N) squared Euclidean distances ||a||^2 + ||b||^2 - 2 a.b, one matmul (twice as fast as torch.cdist).

    Squared distances order and compare exactly like distances, so no square root is ever taken.
    """
    rows_sq_norms = (rows * rows).sum(dim=1, keepdim=True)  # (R, 1)
    products = torch.addmm(others_sq_norms[None, :], rows, others.T, alpha=-2.0)  # (R, N)
    return (products + rows_sq_norms).clamp_min_(0.0)  # rounding can dip just below 0 for equal rows


def _kth_neighbour_radii(features: torch.Tensor, sq_norms: torch.Tensor, k: int, chunk_size: int) -> torch.Tensor:
    """(N,) squared distance from each row to its k-th nearest other row (the row itself is the 0-th)."""
    radii = []
    for start in range(0, features.shape[0], chunk_size):
        distances = _squared_distances(features[start : start + chunk_size], features, sq_norms)  # (chunk, N)
        radii.append(torch.kthvalue(distances, k + 1, dim=1).values)  # k + 1: skip the self-distance 0
    return torch.cat(radii)


def precision_recall_density_coverage(
    real_features: Any, fake_features: Any, *, k: int = 5, chunk_size: int = 1024
) -> PRDC:
    """Precision, recall, density and coverage of (M, D) fake features against (N, D) real features.

    Needs more than `k` samples in each set (each ball is the distance to the k-th *other* sample); the
    paper uses k = 5 with 10,000 samples per set. Computed in float64.
    """
    if not is_int(k) or k < 1:
        raise AigcError(f"expected a positive integer, got {k!r}", field="k", fix="use k=5 (the paper's default)")
    if not is_int(chunk_size) or chunk_size < 1:
        raise AigcError(f"expected a positive integer, got {chunk_size!r}", field="chunk_size", fix="use 1024")
    real = as_feature_matrix(real_features, field="real_features")
    fake = as_feature_matrix(fake_features, field="fake_features")
    check_same_dim(real, fake, field="fake_features")
    for name, matrix in (("real_features", real), ("fake_features", fake)):
        if k >= matrix.shape[0]:
            raise AigcError(
                f"k={k} nearest neighbours need at least {k + 1} samples, got {matrix.shape[0]}",
                field=name,
                fix=f"pass more samples (10,000 is the usual protocol) or use k <= {matrix.shape[0] - 1}",
            )

    real_t, fake_t = torch.from_numpy(real), torch.from_numpy(fake)
    real_sq_norms, fake_sq_norms = (real_t * real_t).sum(dim=1), (fake_t * fake_t).sum(dim=1)  # (N,), (M,)
    # All radii and distances below are squared: the same comparisons, one fewer square root.
    real_radii = _kth_neighbour_radii(real_t, real_sq_norms, int(k), chunk_size)  # (N,)
    fake_radii = _kth_neighbour_radii(fake_t, fake_sq_norms, int(k), chunk_size)  # (M,)

    fake_in_any_real_ball = torch.zeros(fake_t.shape[0], dtype=torch.bool)  # precision, per fake
    real_balls_per_fake = torch.zeros(fake_t.shape[0], dtype=torch.float64)  # density, per fake
    real_in_any_fake_ball = torch.zeros(real_t.shape[0], dtype=torch.bool)  # recall, per real
    nearest_fake_distance = torch.full((real_t.shape[0],), float("inf"), dtype=torch.float64)  # coverage
    for start in range(0, fake_t.shape[0], chunk_size):
        stop = start + chunk_size
        distances = _squared_distances(fake_t[start:stop], real_t, real_sq_norms)  # (chunk, N): fake x real
        inside_real_balls = distances < real_radii[None, :]  # (chunk, N)
        fake_in_any_real_ball[start:stop] = inside_real_balls.any(dim=1)
        real_balls_per_fake[start:stop] = inside_real_balls.sum(dim=1, dtype=torch.float64)
        real_in_any_fake_ball |= (distances < fake_radii[start:stop, None]).any(dim=0)
        nearest_fake_distance = torch.minimum(nearest_fake_distance, distances.min(dim=0).values)

    return PRDC(
        precision=float(fake_in_any_real_ball.double().mean()),
        recall=float(real_in_any_fake_ball.double().mean()),
        density=float(real_balls_per_fake.mean() / k),
        coverage=float((nearest_fake_distance < real_radii).double().mean()),
        k=int(k),
    )
