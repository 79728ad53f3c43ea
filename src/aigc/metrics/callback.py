"""Sample-quality scores during training: FD/KD/IS/PRDC of generated samples at evaluation passes.

    SampleQuality(["fid", "kid"], every=1000, num_samples=2000)

At every `every`-th step (a multiple of train.eval_every) it generates `num_samples` images with the
sampling model (EMA weights when training keeps them), scores them against the reference split exactly
like `aigc eval` does (same feature network, same cached reference features, same protocol; the
protocol is written once to RUN/eval-protocol.json), and adds the scores to the loop's evaluation
metrics under "eval/<label>": "eval/FD-MNISTClassifier", "eval/KD-MNISTClassifier",
"eval/IS-MNISTClassifier", "eval/precision", "eval/recall", "eval/density", "eval/coverage".

It adds them to the metrics dict that the loop hands to every callback's `on_eval`, so a MetricLogger
or EarlyStopping that comes after it in the callback list logs and watches them
(`train.early_stopping.metric = "eval/FD-MNISTClassifier"`, mode "min"). The loop puts it before them
when the config asks for it; passed by hand through `fit(callbacks=[...])` it comes after them, and then
it hands its scores to the loggers itself (early stopping cannot watch them in that case).

Scoring never touches the training RNG (it runs under `torch.random.fork_rng`), so a run with this
callback resumes exactly like one without it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import torch

from aigc.errors import ConfigError
from aigc.files import atomic_write_text
from aigc.metrics.evaluate import (
    MetricSettings,
    _geometry,
    _network,
    check_sample_counts,
    evaluate_images,
    flat_scores,
    generate_images,
    parse_metrics,
)
from aigc.training.callbacks import Callback, MetricLogger, Progress

if TYPE_CHECKING:
    from aigc.metrics.features import FeatureNetwork
    from aigc.training.loop import TrainState

PREFIX = "eval/"


class SampleQuality(Callback):
    """Scores generated samples at evaluation passes and adds them to the evaluation metrics."""

    def __init__(
        self,
        metrics: Sequence[str] | str = ("fid",),
        *,
        every: int = 0,
        num_samples: int = 1000,
        feature_network: "str | FeatureNetwork | None" = None,
        inception_weights: str | Path | None = None,
        reference_split: str = "train",
        reference_count: int | None = None,
        settings: MetricSettings | None = None,
        seed: int = 0,
        batch_size: int = 500,
        cache_dir: str | Path | None = None,
    ):
        self.metrics = parse_metrics(metrics)
        self.every = every  # steps between scores; 0: at every evaluation pass
        self.num_samples = num_samples
        self.feature_network = feature_network
        self.inception_weights = inception_weights
        self.reference_split = reference_split
        self.reference_count = reference_count  # None: as many as num_samples, at most the whole split
        # KID's standard subsets of 1000 do not fit the small sample counts used during training.
        self.settings = settings or MetricSettings(kid_subset_size=min(1000, num_samples), kid_subsets=50)
        self.seed = seed
        self.batch_size = batch_size
        self.cache_dir = cache_dir
        self.network: "FeatureNetwork | None" = None
        self.late_writers: list[Callback] = []
        self.last_scores: dict[str, float] = {}

    def on_fit_start(self, state: "TrainState") -> None:
        train = state.config.train
        if train.eval_every == 0:
            raise ConfigError(
                "sample-quality scores are computed at evaluation passes, but there are none",
                field="train.eval_every",
                fix="set train.eval_every > 0 (the scores come every `every` steps, a multiple of it)",
            )
        if self.every and self.every % train.eval_every:
            raise ConfigError(
                f"scores every {self.every} steps do not line up with evaluation passes every {train.eval_every}",
                field="train.eval_metrics_every",
                fix=f"use a multiple of train.eval_every ({train.eval_every}), or 0 for every pass",
            )
        stop = train.early_stopping
        if stop is not None and stop.metric.startswith(PREFIX) and self.every not in (0, train.eval_every):
            raise ConfigError(
                f"early stopping watches {stop.metric}, but sample scores come only every {self.every} steps, "
                f"not at every evaluation pass ({train.eval_every})",
                field="train.eval_metrics_every",
                fix=f"set train.eval_metrics_every=0 and, to score less often, raise train.eval_every to {self.every}",
            )
        check_sample_counts(self.metrics, self.num_samples, self.reference_count, self.settings)
        image_size, channels = _geometry(state.config)
        self.network = _network(self.feature_network, state.config.data.name, channels, str(state.device), self.inception_weights)
        self.network.check_geometry(channels, image_size)  # fail now, not after the first thousand steps
        position = state.callbacks.index(self) if self in state.callbacks else len(state.callbacks)
        earlier = state.callbacks[:position]
        # Passed by hand (after the loop's own callbacks): hand the scores to the loggers ourselves.
        self.late_writers = [cb for cb in earlier if isinstance(cb, (MetricLogger, Progress))]

    def on_eval(self, state: "TrainState", metrics: dict[str, float]) -> None:
        if self.every and state.step % self.every:
            return
        scores = self.score(state)
        metrics.update(scores)
        state.metrics.update(scores)
        for writer in self.late_writers:
            writer.on_eval(state, scores)

    @torch.no_grad()
    def score(self, state: "TrainState") -> dict[str, float]:
        """Generate, score, and return {"eval/<label>": value}; writes RUN/eval-protocol.json the first time."""
        config = state.config
        image_size, channels = _geometry(config)
        model = state.sampling_model
        devices = [state.device] if state.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # the training RNG stream stays untouched
            images = generate_images(model, self.num_samples, self.seed, batch_size=self.batch_size)
        report = evaluate_images(
            images, network=self.network, data_config=config.data, image_size=image_size, channels=channels,
            metrics=self.metrics, seed=self.seed, reference_split=self.reference_split,
            reference_count=self.reference_count, settings=self.settings, cache_dir=self.cache_dir,
            sampling="image i from seed + i, from the sampling model (EMA weights when kept)",
        )
        self.last_scores = flat_scores(report.scores, PREFIX)
        if state.dist.is_main:
            path = state.run_dir / "eval-protocol.json"
            if not path.exists():
                document = {"metrics": list(self.metrics), "every": self.every, "protocol": report.protocol,
                            "warnings": report.warnings, "keys": sorted(self.last_scores)}
                atomic_write_text(path, json.dumps(document, indent=2) + "\n")
        return dict(self.last_scores)
