"""How images are scored, as one object: the choices a score depends on, apart from the model.

    protocol = Protocol(metrics="fid,kid", num_samples=10_000, seed=0, feature_network="mnist-classifier")
    evaluate_run("runs/dcgan", protocol)            # aigc.metrics.evaluate; the CLI and the callback build one too

A `Protocol` is what a user chooses (metrics, sample count and seed, feature network, reference split
and count, metric settings); `record(...)` is what every score is stored with: those choices resolved —
the network's weights sha256 and input, the reference's dataset, split, fingerprint and subset, the resize
filter and what it did. Two scores are comparable only when their records agree (`aigc.metrics.report`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from aigc.data.resize import RESIZE_METHOD
from aigc.errors import AigcError, known_names

if TYPE_CHECKING:
    from aigc.metrics.features import FeatureNetwork

METRICS = ("fid", "kid", "is", "prdc")
REFERENCE_SPLITS = ("train", "test")


@dataclass(frozen=True)
class MetricSettings:
    """The knobs of each metric; recorded in the protocol of every score they produce."""

    kid_subsets: int = 100  # KID: random subsets averaged (Bińkowski et al. 2018; torch-fidelity)
    kid_subset_size: int = 1000  # KID: samples per subset, drawn from each set
    is_splits: int = 10  # Inception Score: contiguous splits (Salimans et al. 2016)
    prdc_k: int = 5  # precision/recall/density/coverage: k nearest neighbours (Naeem et al. 2020)

    def for_metric(self, metric: str) -> dict[str, int]:
        return {
            "fid": {},
            "kid": {"subsets": self.kid_subsets, "subset_size": self.kid_subset_size},
            "is": {"splits": self.is_splits},
            "prdc": {"k": self.prdc_k},
        }[metric]


def parse_metrics(metrics: str | Iterable[str]) -> tuple[str, ...]:
    """"fid,kid" or ["fid", "kid"] -> ("fid", "kid"), in the order given, without repeats."""
    names = [m.strip().lower() for m in (metrics.split(",") if isinstance(metrics, str) else metrics)]
    return known_names(
        [m for m in names if m], METRICS, unknown=lambda name: f"unknown metric {name!r}", nothing="no metric was named",
        field="--metrics", fix=f"use a comma-separated list of: {', '.join(METRICS)} (e.g. --metrics fid,kid)",
    )


@dataclass(frozen=True)
class Protocol:
    """The choices a score depends on, apart from the model. Metrics are checked when it is made."""

    metrics: tuple[str, ...] | str = ("fid",)  # "fid,kid" or a sequence; stored as a tuple
    num_samples: int | None = 10_000  # images to score (None, for real images only: the whole split)
    seed: int = 0  # generated image i uses seed + i; also seeds KID's subsets
    feature_network: "str | FeatureNetwork | None" = None  # a backbone name, a classifier run folder, a loaded network; None: the dataset's default
    inception_weights: str | Path | None = None  # the FID Inception file, for feature_network "inception-v3"
    reference_split: str = "train"  # real images to compare with: "train" (no hold-out) or "test"
    reference_count: int | None = None  # real images; None: as many as are scored, at most the whole split
    settings: MetricSettings = MetricSettings()

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", parse_metrics(self.metrics))

    def replace(self, **changes: Any) -> "Protocol":
        return dataclasses.replace(self, **changes)

    def check_sample_counts(self, num_samples: int, reference_count: int | None) -> None:
        """Refuse, before any work, sample counts a requested metric cannot use (reference_count None: unknown yet)."""
        settings = self.settings
        needs = {  # metric -> (minimum generated, minimum reference, why)
            "fid": (2, 2, "a covariance needs at least 2 samples"),
            "kid": (settings.kid_subset_size, settings.kid_subset_size, f"KID draws subsets of {settings.kid_subset_size}"),
            "is": (settings.is_splits, 0, f"the Inception Score cuts the samples into {settings.is_splits} splits"),
            "prdc": (settings.prdc_k + 1, settings.prdc_k + 1, f"k={settings.prdc_k} nearest neighbours need k + 1 samples"),
        }
        fixes = {
            "fid": "raise -n (10,000 is the usual protocol)",
            "kid": f"raise -n to at least {settings.kid_subset_size}, or lower --kid-subset-size to at most {num_samples}",
            "is": f"raise -n to at least {settings.is_splits}, or lower --is-splits",
            "prdc": f"raise -n to at least {settings.prdc_k + 1}, or lower --prdc-k",
        }
        for metric in self.metrics:
            generated, reference, why = needs[metric]
            if num_samples < generated:
                raise AigcError(
                    f"{metric} needs at least {generated} generated samples, got {num_samples} ({why})",
                    field="-n/--num-samples",
                    fix=fixes[metric],
                )
            if reference_count is not None and reference_count < reference:
                raise AigcError(
                    f"{metric} needs at least {reference} reference images, got {reference_count} ({why})",
                    field="--reference-count",
                    fix=f"use at least {reference} reference images (a larger split or --reference-count)",
                )

    def record(
        self, *, sample_count: int, candidate: str, sampling: str, network: "FeatureNetwork", reference: dict[str, Any]
    ) -> dict[str, Any]:
        """What a score is stored with: these choices resolved, the network and the reference key
        (`aigc.metrics.reference.ReferenceFeatures.key`) included."""
        return {
            "sample_count": sample_count,
            "candidate": candidate,
            "seed": self.seed,
            "sampling": sampling,
            "reference": {k: v for k, v in reference.items() if k not in ("network", "weights_sha256", "resize")},
            "feature_network": network.describe(),
            "resize": reference["resize"],
            "resize_method": RESIZE_METHOD,
            "metric_settings": {metric: self.settings.for_metric(metric) for metric in self.metrics},
        }

    def warnings(self, sample_count: int, network: "FeatureNetwork") -> list[str]:
        """What makes scores under this protocol less trustworthy, in words."""
        warnings = []
        if "fid" in self.metrics and sample_count <= network.feature_dim:
            warnings.append(
                f"{sample_count} samples for {network.feature_dim}-d features: the covariance is singular and the "
                f"Fréchet distance strongly biased; use well over {network.feature_dim} (10,000 is the usual protocol)"
            )
        if sample_count < 10_000:
            warnings.append(f"{sample_count} samples: scores from fewer samples are biased upward; compare only at equal sample counts")
        return warnings

