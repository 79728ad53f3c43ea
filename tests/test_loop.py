"""The one training loop: exact resume, signals, early stopping, schedules, precision, clipping, sharding."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from aigc import checkpoint as ckpt
from aigc.config import TrainConfig
from aigc.errors import ConfigError
from aigc.training.callbacks import Callback, default_callbacks
from aigc.training.loop import TrainingError, fit
from aigc.training.optim import learning_rate_factor
from aigc.training.sampler import EpochSampler
from helpers import StopAt, assert_same_tensors, tiny, weights

RESUMABLE = [
    "train.max_steps=6",
    "train.ema_decay=0.9",
    "train.eval_every=2",
    "train.lr_schedule=cosine",
    "train.warmup_steps=2",
    "train.early_stopping={metric='val/real_score', mode='max', patience=100}",
]


@pytest.mark.parametrize("family", ["dcgan", "wgan-gp"])
def test_stopped_and_resumed_run_ends_with_the_same_weights(family, tmp_path):
    straight = fit(tiny(family, *RESUMABLE), tmp_path / "straight")
    config = tiny(family, *RESUMABLE)
    stopped = fit(config, tmp_path / "split", callbacks=[*default_callbacks(config, tmp_path / "split"), StopAt(3)])
    assert stopped.step == 3 and stopped.stop_reason == "test stop"
    halfway = weights(stopped.checkpoint)
    resumed = fit(tiny(family, *RESUMABLE), tmp_path / "split", resume=True)
    assert resumed.step == straight.step == 6
    for stem in ("model", "ema"):
        assert_same_tensors(weights(straight.checkpoint, stem), weights(resumed.checkpoint, stem))
    assert any(not torch.equal(halfway[k], v) for k, v in weights(resumed.checkpoint).items())
    state_a = ckpt.read_training_state(straight.checkpoint, ckpt.read_sidecar(straight.checkpoint))
    state_b = ckpt.read_training_state(resumed.checkpoint, ckpt.read_sidecar(resumed.checkpoint))
    assert torch.equal(state_a["rng"][0]["torch"], state_b["rng"][0]["torch"])
    assert state_a["sampler"] == state_b["sampler"]
    assert state_a["callbacks"]["early_stopping"] == state_b["callbacks"]["early_stopping"]


def test_a_second_run_into_the_same_folder_is_refused(tmp_path):
    fit(tiny("dcgan"), tmp_path / "run")
    with pytest.raises(ConfigError, match="already holds a run"):
        fit(tiny("dcgan"), tmp_path / "run")


def test_checkpoint_sidecar_records_config_versions_and_data(tmp_path):
    result = fit(tiny("cgan"), tmp_path / "run")
    sidecar = ckpt.read_sidecar(result.checkpoint)
    assert sidecar["family"] == "cgan" and sidecar["step"] == 4
    assert sidecar["config"]["model"]["num_classes"] == 10  # filled in from the digits dataset
    assert sidecar["versions"]["torch"].startswith("2.13.0")
    assert len(sidecar["data"]["fingerprint"]) == 64 and sidecar["data"]["name"] == "digits"
    assert "loss/generator" in sidecar["metrics"]
    assert set(sidecar["files"]) == {"model.safetensors", "state.safetensors"}


def test_checkpoints_are_kept_to_the_configured_number(tmp_path):
    result = fit(tiny("dcgan", "train.max_steps=8", "train.checkpoint_every=2", "train.keep_checkpoints=2"), tmp_path / "run")
    names = sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("step-*"))
    assert names == ["step-0000006", "step-0000008"]
    assert ckpt.resolve_checkpoint(tmp_path / "run") == result.checkpoint


def test_early_stopping_stops_when_the_metric_does_not_improve(tmp_path):
    # real_score 'min' with patience 1 and a huge min_delta: the second evaluation cannot improve.
    result = fit(
        tiny("dcgan", "train.max_steps=50", "train.eval_every=1", "train.early_stopping={metric='val/real_score', patience=1, min_delta=1e9}"),
        tmp_path / "run",
    )
    assert result.step == 2
    assert result.stop_reason.startswith("early stopping")
    assert ckpt.read_sidecar(result.checkpoint)["step"] == 2


def test_early_stopping_on_an_unknown_metric_names_the_known_ones(tmp_path):
    with pytest.raises(ConfigError, match="val/real_score"):
        fit(tiny("dcgan", "train.early_stopping={metric='val/fid'}"), tmp_path / "run")


def test_early_stopping_without_validation_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="eval_every"):
        fit(tiny("dcgan", "train.eval_every=0", "train.early_stopping={metric='val/real_score'}"), tmp_path / "run")


def test_learning_rate_schedule():
    config = TrainConfig(max_steps=10, warmup_steps=2, lr_schedule="cosine")
    factors = [learning_rate_factor(step, config) for step in range(10)]
    assert factors[:2] == [0.5, 1.0]
    assert factors[2] == pytest.approx(1.0) and factors[-1] == pytest.approx(0.5 * (1 + torch.cos(torch.tensor(torch.pi * 7 / 8)).item()))
    assert all(a >= b for a, b in zip(factors[1:], factors[2:]))
    assert learning_rate_factor(5, TrainConfig(max_steps=10)) == 1.0
    assert learning_rate_factor(5, TrainConfig(max_steps=10, lr_schedule="linear")) == pytest.approx(0.5)


def test_learning_rate_reaches_the_optimizers(tmp_path):
    seen = []

    class Watch(Callback):
        def on_step_end(self, state):
            seen.append(state.optimizers["generator"].param_groups[0]["lr"])

    fit(tiny("dcgan", "train.lr_schedule=linear", "optim.lr=1e-3"), tmp_path / "run", callbacks=[Watch()])  # fit runs exactly the callbacks given
    assert seen == pytest.approx([1e-3, 0.75e-3, 0.5e-3, 0.25e-3])


def test_bf16_autocast_trains(tmp_path):
    result = fit(tiny("wgan-gp", "train.precision=bf16"), tmp_path / "run")
    assert torch.isfinite(torch.tensor(result.metrics["loss/discriminator"]))


def test_gradient_clipping_bounds_the_norm_and_logs_it(tmp_path):
    result = fit(tiny("dcgan", "train.grad_clip=0.001"), tmp_path / "run")
    assert result.metrics["discriminator/grad_norm"] > 0.001  # the norm before clipping is logged
    logs = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any("generator/grad_norm" in line for line in logs)


def test_a_diverging_loss_stops_with_a_clear_error(tmp_path):
    with pytest.raises(TrainingError, match="became nan"):
        fit(tiny("dcgan", "optim.lr=1e30", "optim.name=sgd", "train.max_steps=20", "train.log_every=20"), tmp_path / "run")


def test_time_budget_stops_and_saves(tmp_path):
    result = fit(tiny("dcgan", "train.max_steps=100000", "train.max_minutes=0.002"), tmp_path / "run")
    assert result.stop_reason.startswith("time budget") and result.step < 100000
    assert ckpt.read_sidecar(result.checkpoint)["step"] == result.step


def test_cpu_budget_stops_on_process_cpu_time_and_saves(tmp_path):
    started = time.process_time()
    result = fit(tiny("dcgan", "train.max_steps=100000", "train.max_cpu_minutes=0.005"), tmp_path / "run")
    assert result.stop_reason.startswith("CPU budget") and result.step < 100000
    assert time.process_time() - started >= 0.3  # it ran until 0.3 CPU-seconds were spent, not less
    last = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["cpu_s"] >= 0.3 and last["elapsed_s"] > 0  # every row records both clocks
    assert ckpt.read_sidecar(result.checkpoint)["step"] == result.step


def test_metrics_jsonl_has_train_and_validation_records(tmp_path):
    fit(tiny("dcgan"), tmp_path / "run")
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss/generator" in r] == [2, 4]
    assert [r["step"] for r in records if "val/discriminator_loss" in r] == [2, 4]


def test_sample_grids_are_written_every_n_steps_and_at_the_end(tmp_path):
    fit(tiny("dcgan", "train.sample_every=3", "train.max_steps=7"), tmp_path / "run")
    assert sorted(p.name for p in (tmp_path / "run" / "samples").iterdir()) == ["step-0000003.png", "step-0000006.png", "step-0000007.png"]


def test_sampler_covers_each_epoch_once_and_shards_disjointly():
    seen = []
    for rank in range(2):
        sampler = EpochSampler(10, batch_size=5, seed=3, rank=rank, world_size=2)
        seen.append(torch.cat([sampler.next_indices()]))
        assert sampler.epoch == 1  # one batch of 5 is the whole shard
    assert sorted(torch.cat(seen).tolist()) == list(range(10))
    sampler = EpochSampler(10, batch_size=3, seed=3)
    first = [sampler.next_indices() for _ in range(3)]
    assert len(torch.cat(first).unique()) == 9 and sampler.epoch == 1
    state = sampler.state_dict()
    expected = sampler.next_indices()
    copy = EpochSampler(10, batch_size=3, seed=3)
    copy.load_state_dict(state)
    assert torch.equal(copy.next_indices(), expected)


def test_sigterm_saves_a_checkpoint_that_resumes(tmp_path):
    run = tmp_path / "run"
    command = [sys.executable, "-m", "aigc", "train", "dcgan-tiny", "--out", str(run), "--max-steps", "1000000", "--set", "train.log_every=1", "--set", "train.eval_every=0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = run / "metrics.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and not (metrics.exists() and len(metrics.read_text().splitlines()) >= 3):
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    sidecar = ckpt.read_sidecar(ckpt.resolve_checkpoint(run))
    assert sidecar["stop_reason"] == "signal SIGTERM" and sidecar["step"] >= 3
    resumed = subprocess.run([sys.executable, "-m", "aigc", "train", "--resume", str(run), "--max-steps", str(sidecar["step"] + 2)], capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert ckpt.read_sidecar(ckpt.resolve_checkpoint(run))["step"] == sidecar["step"] + 2


def test_tensorboard_events_are_written_when_installed(tmp_path):
    from conftest import has_module, require

    require(has_module("tensorboard"), "pip install tensorboard")
    fit(tiny("dcgan", "train.tensorboard=true"), tmp_path / "run")
    assert list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
