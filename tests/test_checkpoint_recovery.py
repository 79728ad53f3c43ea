"""Dead ends after crashes and damaged files: every one is recovered or refused with a clear error.

Crashes are simulated by leaving on disk what an interrupted write leaves (a staging folder, a missing
`latest`, rows of lost steps in metrics.jsonl), then training, resuming or loading again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import aigc
from aigc import checkpoint as ckpt
from aigc.errors import AigcError, AigcWarning, CheckpointError, ConfigError
from aigc.files import atomic_write_bytes, atomic_write_text, publish_directory, sha256_file
from aigc.training.callbacks import default_callbacks
from aigc.training.loop import fit
from aigc.training.sampler import EpochSampler
from helpers import StopAt, assert_same_tensors, tiny, weights

EVERY_2 = ["train.max_steps=6", "train.checkpoint_every=2", "train.keep_checkpoints=3", "train.log_every=1", "train.eval_every=0"]


def aigc_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aigc", *args], capture_output=True, text=True, timeout=timeout)


def rows(run: Path) -> list[int]:
    """The steps of the training-loss rows of metrics.jsonl (validation rows have their own)."""
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [record["step"] for record in records if "loss/generator" in record]


def rewrite_sidecar(checkpoint: Path, change) -> None:
    document = json.loads((checkpoint / ckpt.SIDECAR).read_text())
    change(document)
    (checkpoint / ckpt.SIDECAR).write_text(json.dumps(document))


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """Six steps with a checkpoint every two: the run every recovery must reproduce."""
    return fit(tiny("dcgan", *EVERY_2), tmp_path_factory.mktemp("straight") / "run")


# ----------------------------------------------------------------------------------------- atomic writes


def test_atomic_writes_replace_only_regular_files(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(AigcError, match="it is a FIFO"):
        atomic_write_bytes(fifo, b"x")
    (tmp_path / "folder").mkdir()
    with pytest.raises(AigcError, match="it is a folder"):
        atomic_write_text(tmp_path / "folder", "x")
    (tmp_path / "target.txt").write_text("kept")
    os.symlink(tmp_path / "target.txt", tmp_path / "link.txt")
    with pytest.raises(AigcError, match="symbolic link"):
        atomic_write_text(tmp_path / "link.txt", "x")
    with pytest.raises(AigcError, match="inside /proc"):
        atomic_write_text("/proc/self/comm", "x")
    (tmp_path / "file").write_text("a file")
    with pytest.raises(AigcError, match="file is a file, not a folder"):
        atomic_write_text(tmp_path / "file" / "below" / "x.txt", "x")
    assert fifo.exists() and (tmp_path / "folder").is_dir() and (tmp_path / "target.txt").read_text() == "kept"
    assert not list(tmp_path.glob(".*.tmp"))  # nothing half-written left behind
    assert atomic_write_text(tmp_path / "target.txt", "new").read_text() == "new"  # a regular file is replaced


def test_a_folder_is_published_only_over_a_folder_or_nothing(tmp_path):
    staging = tmp_path / ".staging"
    staging.mkdir()
    (staging / "a.txt").write_text("a")
    (tmp_path / "final").write_text("a file, not a folder")
    with pytest.raises(AigcError, match="it is not a regular file|only a folder"):
        publish_directory(staging, tmp_path / "final")
    assert (tmp_path / "final").read_text() == "a file, not a folder"


def test_checkpoint_files_are_fsynced_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(("replace", str(a), str(b))), real_replace(a, b))[1])
    folder = ckpt.save_checkpoint(tmp_path / "checkpoints" / "step-1", weights={"model": {"w": torch.ones(2)}}, training_state={"step": 1}, sidecar={"config": {}})
    publish = next(i for i, e in enumerate(events) if e[0] == "replace" and e[2] == str(folder))
    staging = events[publish][1]
    synced_before = {e[1] for e in events[:publish] if e[0] == "fsync"}
    for name in ("model.safetensors", "state.safetensors", ckpt.SIDECAR):
        assert f"{staging}/{name}" in synced_before, name
    assert staging in synced_before  # the folder's entries
    assert str(folder.parent) in {e[1] for e in events[publish:] if e[0] == "fsync"}  # the rename itself


# ------------------------------------------------------------------------------------ checkpoint dead ends


def died_during_its_first_checkpoint(run: Path) -> Path:
    """A run folder as a kill -9 during the first checkpoint write leaves it: config.toml and log rows
    (the last one cut short), the checkpoint still under its staging name, a temporary `latest`."""
    fit(tiny("dcgan", "train.max_steps=2"), run)
    (run / "checkpoints" / "latest").unlink()
    (run / "checkpoints" / "step-0000002").rename(run / "checkpoints" / ".step-0000002.tmp-k9x2")
    (run / "checkpoints" / ".latest.q1w2.tmp").write_text("step-")
    with open(run / "metrics.jsonl", "a") as file:
        file.write('{"step": 3, "loss/gen')
    return run


def test_a_crash_during_the_first_checkpoint_does_not_block_a_new_run(tmp_path):
    run = died_during_its_first_checkpoint(tmp_path / "run")
    result = aigc.train("dcgan-tiny", out=run, max_steps=4)  # not "already holds a run"
    assert result.step == 4 and not list((run / "checkpoints").glob(".*"))  # the staging leftovers are gone
    assert rows(run) == [2, 4]  # a fresh metrics.jsonl: none of the dead attempt's rows


def test_resume_restarts_an_attempt_that_died_before_its_first_checkpoint(tmp_path):
    run = died_during_its_first_checkpoint(tmp_path / "run")
    with pytest.warns(AigcWarning, match="starting again from step 0"):
        result = aigc.train(resume=run, max_steps=3)
    assert result.step == 3 and rows(run) == [2, 3]
    assert not list((run / "checkpoints").glob(".*"))


def test_a_missing_or_corrupt_latest_falls_back_to_the_newest_verified_checkpoint(straight, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(straight.run_dir, run)
    (run / "checkpoints" / "latest").unlink()
    with pytest.warns(AigcWarning, match="using step-0000006"):
        assert ckpt.resolve_checkpoint(run).name == "step-0000006"
    (run / "checkpoints" / "latest").write_text("step-0000006\n")
    (run / "checkpoints" / "step-0000006" / ckpt.SIDECAR).write_bytes(b"\xff\xfe not json")
    with pytest.warns(AigcWarning, match="not UTF-8.*using step-0000004"):
        assert ckpt.resolve_checkpoint(run).name == "step-0000004"
    step_4 = run / "checkpoints" / "step-0000004" / "model.safetensors"
    step_4.write_bytes(step_4.read_bytes()[:-1] + b"\0")  # a damaged file: its sha256 no longer matches
    with pytest.warns(AigcWarning, match="using step-0000002"):
        assert ckpt.resolve_checkpoint(run).name == "step-0000002"
    with pytest.warns(AigcWarning):
        resumed = aigc.train(resume=run)  # continues from step 2 and ends where the straight run ended
    assert resumed.step == 6 and rows(run) == [1, 2, 3, 4, 5, 6]
    assert_same_tensors(weights(straight.checkpoint), weights(resumed.checkpoint))
    (run / "checkpoints" / "latest").unlink()
    for folder in (run / "checkpoints").glob("step-*"):
        (folder / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="holds no complete checkpoint"):
        ckpt.resolve_checkpoint(run)


def test_resume_from_a_step_folder_continues_that_run_from_there(straight, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(straight.run_dir, run)
    with pytest.warns(AigcWarning, match="removing the later checkpoints step-0000006"):
        resumed = aigc.train(resume=run / "checkpoints" / "step-0000004")
    assert resumed.run_dir == run and resumed.step == 6
    assert not (run / "checkpoints" / "step-0000004" / "checkpoints").exists()  # no run nested inside
    assert rows(run) == [1, 2, 3, 4, 5, 6]  # rows 5 and 6 were dropped and trained again, not repeated
    assert_same_tensors(weights(straight.checkpoint), weights(resumed.checkpoint))
    assert ckpt.resolve_checkpoint(run) == resumed.checkpoint


def test_a_finished_run_says_so_when_resumed(tmp_path):
    run = tmp_path / "run"
    assert aigc_cli("train", "dcgan-tiny", "--out", str(run), "--max-steps", "2").returncode == 0
    result = aigc_cli("train", "--resume", str(run))
    assert result.returncode == 0, result.stderr
    assert "already finished: step 2 of train.max_steps=2" in result.stdout and "--max-steps N" in result.stdout


def test_the_last_checkpoint_records_its_stop_reason_and_its_own_metrics(tmp_path):
    # The periodic checkpoint falls on the last step: it is the final one and must say why training stopped.
    result = fit(tiny("dcgan", "train.max_steps=4", "train.checkpoint_every=4", "train.log_every=4"), tmp_path / "a")
    sidecar = ckpt.read_sidecar(result.checkpoint)
    assert sidecar["stop_reason"] == "max_steps 4 reached" and sidecar["metrics"] == result.metrics
    # Stopped between log steps: the losses of the steps since the last log are logged and saved.
    config = tiny("dcgan", "train.max_steps=10", "train.log_every=2")
    result = fit(config, tmp_path / "b", callbacks=[*default_callbacks(config, tmp_path / "b"), StopAt(3)])
    sidecar = ckpt.read_sidecar(result.checkpoint)
    assert sidecar["step"] == 3 and sidecar["stop_reason"] == "test stop"
    assert sidecar["metrics"] == result.metrics
    assert json.loads((tmp_path / "b" / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 3


# ------------------------------------------------------------------------------------ damaged checkpoints


def test_damaged_checkpoint_files_get_clear_errors(straight, tmp_path):
    import shutil

    checkpoint = tmp_path / "step"
    shutil.copytree(straight.checkpoint, checkpoint)
    sidecar_text = (checkpoint / ckpt.SIDECAR).read_text()
    for content, message in [
        (b"\xff\xfe\x00", "not UTF-8"),
        (b"[1, 2]", "holds a JSON list, not an object"),
        (json.dumps({"format": "aigc-checkpoint", "files": {}}).encode(), "lacks 'config'"),
    ]:
        (checkpoint / ckpt.SIDECAR).write_bytes(content)
        with pytest.raises(CheckpointError, match=message):
            ckpt.read_sidecar(checkpoint)
    (checkpoint / ckpt.SIDECAR).write_text(sidecar_text)
    # A broken safetensors header whose sha256 was written to match: not a SafetensorError traceback.
    (checkpoint / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header}")
    rewrite_sidecar(checkpoint, lambda d: d["files"].update({"model.safetensors": sha256_file(checkpoint / "model.safetensors")}))
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        ckpt.read_tensors(checkpoint, "model.safetensors", ckpt.read_sidecar(checkpoint))


@pytest.mark.parametrize("remove", ["optimizers", "epoch", "step"])
def test_a_training_state_without_what_resume_needs_is_refused(straight, tmp_path, remove):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(straight.run_dir, run)

    def drop(document):
        skeleton = document["training_state"]["__dict__"]
        if remove == "epoch":
            sampler = next(item for key, item in skeleton if key == "sampler")
            sampler["__dict__"] = [pair for pair in sampler["__dict__"] if pair[0] != "epoch"]
        else:
            document["training_state"]["__dict__"] = [pair for pair in skeleton if pair[0] != remove]

    rewrite_sidecar(run / "checkpoints" / "step-0000006", drop)
    with pytest.raises(CheckpointError, match=f"lacks (sampler )?'{remove}'"):
        fit(tiny("dcgan", *EVERY_2, "train.max_steps=8"), run, resume=True)


def test_nan_weights_are_refused_on_load(tmp_path):
    result = fit(tiny("dcgan"), tmp_path / "run")
    tensors = weights(result.checkpoint)
    key = next(name for name, tensor in tensors.items() if tensor.is_floating_point())
    tensors[key] = torch.full_like(tensors[key], float("nan"))
    save_file(tensors, str(result.checkpoint / "model.safetensors"))
    rewrite_sidecar(result.checkpoint, lambda d: d["files"].update({"model.safetensors": sha256_file(result.checkpoint / "model.safetensors")}))
    with pytest.raises(CheckpointError, match=f"NaN or infinite \\({key}"):
        aigc.load(tmp_path / "run")


# ------------------------------------------------------------------------------------------ metrics.jsonl


def test_resuming_after_a_crash_drops_the_rows_of_lost_steps(straight, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(straight.run_dir, run)
    # A crash after step 5 was logged (and half of a row written), with step-4 the last checkpoint.
    shutil.rmtree(run / "checkpoints" / "step-0000006")
    (run / "checkpoints" / "latest").write_text("step-0000004\n")
    lines = (run / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text("\n".join(lines[:5]) + '\n{"step": 6, "loss/gen')
    resumed = aigc.train(resume=run)
    assert rows(run) == [1, 2, 3, 4, 5, 6]
    assert_same_tensors(weights(straight.checkpoint), weights(resumed.checkpoint))


def test_resuming_a_checkpoint_of_more_processes_warns_that_the_batch_changed(straight, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(straight.run_dir, run)

    def as_two_processes(document):  # what torchrun with 2 processes writes: one RNG state per process
        skeleton = document["training_state"]["__dict__"]
        rng = next(item for key, item in skeleton if key == "rng")
        rng.append(rng[0])
        document["world_size"] = 2

    rewrite_sidecar(run / "checkpoints" / "step-0000006", as_two_processes)
    batch = tiny("dcgan").train.batch_size
    with pytest.warns(AigcWarning, match=f"trained by 2 processes and this run has 1: the effective batch changes from {2 * batch} to {batch}"):
        assert fit(tiny("dcgan", *EVERY_2, "train.max_steps=7"), run, resume=True).step == 7


def test_a_sampler_resumed_with_shorter_shards_starts_the_next_epoch():
    saved = EpochSampler(10, batch_size=2, seed=0, world_size=1)  # 5 batches an epoch
    for _ in range(4):
        saved.next_indices()
    resumed = EpochSampler(10, batch_size=2, seed=0, world_size=2)  # 2 batches an epoch per process
    resumed.load_state_dict(saved.state_dict())
    assert resumed.state_dict() == {"epoch": 1, "batch": 0} and len(resumed.next_indices()) == 2


def test_replicas_identical_compares_buffers_and_checkpoints_average_them(tmp_path):
    script = tmp_path / "check.py"
    script.write_text(
        "import torch\n"
        "from aigc.training import distributed\n"
        "info, device = distributed.setup('cpu')\n"
        "module = torch.nn.BatchNorm1d(3)\n"
        "module.running_mean.fill_(float(info.rank))  # same parameters, statistics of different shards\n"
        "assert not distributed.replicas_identical(module, info)\n"
        "distributed.average_buffers(module, info)\n"
        "assert torch.equal(module.running_mean, torch.full((3,), 0.5)), module.running_mean\n"
        "assert distributed.replicas_identical(module, info)\n"
        "distributed.teardown(info)\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(script)], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]


# ---------------------------------------------------------------------------------------------- the CLI


def test_cli_mistakes_are_errors_not_tracebacks(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    cases = [
        (["train", "dcgan-tiny", "--set", "train.device=cuda", "--out", str(tmp_path / "r")], "train.device: device 'cuda' was asked for"),
        (["eval", "dcgan-mnist", "--device", "cuda", "-n", "10"], "--device: device 'cuda' was asked for"),
        (["train", "dcgan-tiny", "--out", str(a_file)], "--out: " + str(a_file) + " is a file, not a folder"),
        (["data", "show", "tiny-text", "--tokenizer", "foo"], "--tokenizer: unknown tokenizer 'foo'"),
        (["data", "prepare", "shakespeare", "--cache-dir", str(a_file / "cache")], "--cache-dir: cannot write the cache folder"),
    ]
    if torch.cuda.is_available():  # on a GPU machine cuda is a valid device
        cases = cases[2:]
    for args, message in cases:
        result = aigc_cli(*args)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, (args, result.stderr[-2000:])
    assert not (tmp_path / "r").exists()


def test_training_prints_within_seconds_of_starting(tmp_path):
    import time

    command = [sys.executable, "-m", "aigc", "train", "dcgan-tiny", "--out", str(tmp_path / "run"), "--max-steps", "3", "--set", "train.log_every=1000", "--set", "train.progress=true"]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    first = process.stderr.readline()
    seconds = time.perf_counter() - started
    rest = process.communicate(timeout=120)[1]
    assert first.startswith("loading dataset digits") and seconds < 20  # before any step: the python start-up alone
    assert "first step took" in rest  # a pipe gets a line after the first step, not only every log_every steps


def test_warnings_are_one_line_on_the_cli(straight, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(straight.run_dir, run)
    (run / "checkpoints" / "latest").unlink()
    result = aigc_cli("train", "--resume", str(run), "--max-steps", "7")
    assert result.returncode == 0, result.stderr
    assert "warning: " in result.stderr and "using step-0000006" in result.stderr and "AigcWarning" not in result.stderr


def test_fit_without_a_scorer_refuses_eval_metrics(tmp_path):
    with pytest.raises(ConfigError, match="train.eval_metrics"):
        fit(tiny("dcgan", "train.eval_metrics=['fid']", "train.eval_every=2"), tmp_path / "run")


def test_a_callback_failing_at_the_end_does_not_cost_the_final_checkpoint(tmp_path):
    """The sample grid's on_fit_end ran before the checkpointer's: when it failed, nothing was saved."""
    from aigc.training.callbacks import Callback, default_callbacks

    class BrokenAtEnd(Callback):
        def on_fit_end(self, state):
            raise RuntimeError("the sample grid could not be drawn")

    config = tiny("dcgan")
    with pytest.raises(RuntimeError, match="sample grid"):
        fit(config, tmp_path / "run", callbacks=[BrokenAtEnd(), *default_callbacks(config, tmp_path / "run")])
    assert (tmp_path / "run" / "checkpoints" / "latest").read_text().strip() == f"step-{config.train.max_steps:07d}"
