"""Data-parallel training under torchrun: two CPU processes with gloo."""

from __future__ import annotations

import json
import subprocess
import sys

import torch

from aigc import checkpoint as ckpt


def test_torchrun_two_processes_train_in_sync_and_rank_0_writes_once(tmp_path):
    run = tmp_path / "run"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "aigc", "train", "wgan-gp-tiny", "--out", str(run), "--max-steps", "4", "--set", "train.checkpoint_every=2",
        "--set", "train.ema_decay=0.9",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    sidecar = ckpt.read_sidecar(ckpt.resolve_checkpoint(run))
    assert sidecar["world_size"] == 2 and sidecar["step"] == 4
    assert sidecar["replicas_identical"] is True  # gradients were averaged: both processes hold the same weights
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss/discriminator" in r] == [2, 4]  # written once, by rank 0
    state = ckpt.read_training_state(ckpt.resolve_checkpoint(run), sidecar)
    assert len(state["rng"]) == 2 and not torch.equal(state["rng"][0]["torch"], state["rng"][1]["torch"])
    assert result.stdout.count("checkpoint:") == 1


def test_averaged_gradients_equal_the_mean_of_each_process(tmp_path):
    script = tmp_path / "check.py"
    script.write_text(
        "import torch, torch.distributed as dist\n"
        "from aigc.training import distributed\n"
        "info, device = distributed.setup('cpu')\n"
        "p = torch.nn.Parameter(torch.zeros(3)); q = torch.nn.Parameter(torch.zeros(2, 2))\n"
        "p.grad = torch.full((3,), float(info.rank + 1)); q.grad = torch.full((2, 2), 10.0 * info.rank)\n"
        "distributed.average_gradients([p, q], info)\n"
        "assert torch.equal(p.grad, torch.full((3,), 1.5)), p.grad\n"
        "assert torch.equal(q.grad, torch.full((2, 2), 5.0)), q.grad\n"
        "assert distributed.any_process(info.rank == 1, info, device)\n"
        "distributed.teardown(info)\n"
    )
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(script)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
