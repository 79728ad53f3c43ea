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
(`train.early_stopping.metric = "eval/FD-MNISTClassifier"`, mode "min"). `aigc.train` puts it before them
when the config asks for it (`train.eval_metrics`); the loop itself knows nothing of it. Passed by hand
after the loggers it hands its scores to them itself (early stopping cannot watch them in that case).

Scoring never touches the training RNG (it runs under `torch.random.fork_rng`), so a run with this
callback resumes exactly like one without it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import torch

from aigc.data.resize import image_geometry
from aigc.errors import ConfigError
from aigc.files import atomic_write_text
from aigc.metrics.evaluate import evaluate_images, feature_network_for, flat_scores, generate_images
from aigc.metrics.protocol import MetricSettings, Protocol
from aigc.training.callbacks import Callback, MetricLogger, Progress

if TYPE_CHECKING:
    from aigc.training.loop import TrainState

PREFIX = "eval/"


def training_protocol(metrics: Sequence[str] | str = ("fid",), **choices: Any) -> Protocol:
    """A Protocol with the defaults for scores during training: 1000 samples, and KID subsets that fit
    them (the standard 100 subsets of 1000 do not fit the small sample counts used during training)."""
    num_samples = choices.pop("num_samples", 1000)
    settings = choices.pop("settings", None) or MetricSettings(kid_subset_size=min(1000, num_samples), kid_subsets=50)
    return Protocol(metrics=metrics, num_samples=num_samples, settings=settings, **choices)


class SampleQuality(Callback):
    """Scores generated samples at evaluation passes and adds them to the evaluation metrics.

    `SampleQuality(protocol, every=...)` with a Protocol, or `SampleQuality(["fid"], num_samples=...,
    feature_network=...)` with the metrics and any other Protocol fields (`training_protocol`)."""

    def __init__(
        self,
        protocol: Protocol | Sequence[str] | str = ("fid",),
        *,
        every: int = 0,
        batch_size: int = 500,
        cache_dir: str | Path | None = None,
        **choices: Any,
    ):
        self.protocol = protocol if isinstance(protocol, Protocol) else training_protocol(protocol, **choices)
        if isinstance(protocol, Protocol) and choices:
            raise ConfigError(f"{', '.join(choices)} given beside a Protocol", field="SampleQuality", fix="put them into the Protocol")
        self.every = every  # steps between scores; 0: at every evaluation pass
        self.batch_size = batch_size
        self.cache_dir = cache_dir
        self.late_writers: list[Callback] = []
        self.last_scores: dict[str, float] = {}

    @property
    def metrics(self) -> tuple[str, ...]:
        return self.protocol.metrics

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
        self.protocol.check_sample_counts(self.protocol.num_samples, self.protocol.reference_count)
        image_size, channels = image_geometry(state.config.model, "image metrics")
        network = feature_network_for(self.protocol, state.config.data.name, channels, str(state.device))
        network.check_geometry(channels, image_size)  # fail now, not after the first thousand steps
        self.protocol = self.protocol.replace(feature_network=network)  # loaded once for the whole run
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
        image_size, channels = image_geometry(config.model, "image metrics")
        devices = [state.device] if state.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # the training RNG stream stays untouched
            images = generate_images(state.sampling_model, self.protocol.num_samples, self.protocol.seed, batch_size=self.batch_size)
        report = evaluate_images(
            images, self.protocol, data_config=config.data, image_size=image_size, channels=channels,
            cache_dir=self.cache_dir, sampling="image i from seed + i, from the sampling model (EMA weights when kept)",
        )
        self.last_scores = flat_scores(report.scores, PREFIX)
        if state.dist.is_main:
            path = state.run_dir / "eval-protocol.json"
            if not path.exists():
                document = {"metrics": list(self.metrics), "every": self.every, "protocol": report.protocol,
                            "warnings": report.warnings, "keys": sorted(self.last_scores)}
                atomic_write_text(path, json.dumps(document, indent=2) + "\n")
        return dict(self.last_scores)
