"""Configs (presets, TOML files, overrides) and checkpoints (atomic, verified, never unpickled)."""

from __future__ import annotations

import json

import pytest
import torch

from aigc import checkpoint as ckpt
from aigc.config import apply_overrides, load_config, parse_value
from aigc.errors import CheckpointError, ConfigError


def test_override_values_are_toml_literals():
    assert parse_value("1e-4") == 1e-4 and parse_value("true") is True and parse_value("[0.5, 0.9]") == [0.5, 0.9]
    assert parse_value("mnist") == "mnist" and parse_value('"007"') == "007"
    assert apply_overrides({"a": {"b": 1}}, ["a.b=2", "c.d=x"]) == {"a": {"b": 2}, "c": {"d": "x"}}


def test_overrides_reach_every_section():
    config = load_config("dcgan-tiny", ["model.width=12", "optim.betas=[0.0, 0.9]", "train.batch_size=4", "data.limit=50"])
    assert (config.model.width, config.optim.betas, config.train.batch_size, config.data.limit) == (12, (0.0, 0.9), 4, 50)


def test_errors_name_the_key_and_the_choices():
    with pytest.raises(ConfigError, match="unknown section 'modle'"):
        load_config("dcgan-tiny", ["modle.width=3"])
    with pytest.raises(ConfigError, match=r"train.batch_size: Input should be greater than or equal to 1"):
        load_config("dcgan-tiny", ["train.batch_size=0"])
    with pytest.raises(ConfigError, match="optim.name"):
        load_config("dcgan-tiny", ["optim.name=adagrad"])
    with pytest.raises(ConfigError, match="unknown model family 'stylegan9'"):
        load_config("dcgan-tiny", ["family=stylegan9"])
    with pytest.raises(ConfigError, match="train.max_steps is a value, not a section"):
        load_config("dcgan-tiny", ["train.max_steps.x=1"])
    with pytest.raises(ConfigError, match="dcgan needs image_size divisible by 4"):
        load_config("dcgan-tiny", ["model.image_size=30"])


def test_toml_files_and_extends(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('extends = "dcgan-tiny"\n[model]\nwidth = 6\n[train]\nmax_steps = 9\n')
    config = load_config(str(path))
    assert config.family == "dcgan" and config.model.width == 6 and config.train.max_steps == 9
    assert config.data.name == "digits"  # inherited
    (tmp_path / "bad.toml").write_text("family = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(str(tmp_path / "bad.toml"))
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(str(tmp_path / "missing.toml"))


def test_nested_state_round_trips_through_safetensors(tmp_path):
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    state = {"optimizer": optimizer.state_dict(), "rng": [{"torch": torch.get_rng_state()}], "step": 7, "none": None}
    folder = ckpt.save_checkpoint(tmp_path / "checkpoints" / "step-1", weights={"model": model.state_dict()}, training_state=state, sidecar={"step": 1, "config": {}})
    sidecar = ckpt.read_sidecar(folder)
    restored = ckpt.read_training_state(folder, sidecar)
    assert restored["step"] == 7 and restored["none"] is None
    assert torch.equal(restored["rng"][0]["torch"], state["rng"][0]["torch"])
    fresh = torch.optim.Adam(torch.nn.Linear(3, 2).parameters())
    fresh.load_state_dict(restored["optimizer"])  # int keys and param groups survive JSON
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])
    assert ckpt.resolve_checkpoint(tmp_path) == folder
    assert not list((tmp_path / "checkpoints").glob(".*tmp*"))  # no staging folder left behind


def test_a_failed_write_leaves_no_checkpoint(tmp_path):
    with pytest.raises(TypeError):
        ckpt.save_checkpoint(tmp_path / "checkpoints" / "step-1", weights={"model": {}}, training_state={"bad": object()}, sidecar={})
    assert not (tmp_path / "checkpoints" / "step-1").exists() and not (tmp_path / "checkpoints" / "latest").exists()
    assert list((tmp_path / "checkpoints").iterdir()) == []


def test_a_changed_weight_file_is_detected(tmp_path):
    folder = ckpt.save_checkpoint(tmp_path / "c", weights={"model": {"w": torch.ones(3)}}, training_state=None, sidecar={"config": {}})
    sidecar = ckpt.read_sidecar(folder)
    assert torch.equal(ckpt.read_tensors(folder, "model.safetensors", sidecar)["w"], torch.ones(3))
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (folder / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="does not match the sha256"):
        ckpt.read_tensors(folder, "model.safetensors", sidecar)
    with pytest.raises(CheckpointError, match="holds weights only"):
        ckpt.read_training_state(folder, sidecar)


def test_foreign_or_future_sidecars_are_refused(tmp_path):
    (tmp_path / "checkpoint.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(CheckpointError, match="not an aigc checkpoint"):
        ckpt.read_sidecar(tmp_path)
    (tmp_path / "checkpoint.json").write_text(json.dumps({"format": "aigc-checkpoint", "format_version": 99}))
    with pytest.raises(CheckpointError, match="newer than this aigc"):
        ckpt.read_sidecar(tmp_path)


def test_weights_that_do_not_fit_the_config_get_a_clear_message():
    model = torch.nn.Linear(3, 2)
    with pytest.raises(CheckpointError, match=r"weight: file \(2, 4\) vs model \(2, 3\)"):
        ckpt.load_weights(model, {"weight": torch.zeros(2, 4), "bias": torch.zeros(2)}, source="x")
    with pytest.raises(CheckpointError, match="missing"):
        ckpt.load_weights(model, {"weight": torch.zeros(2, 3)}, source="x")


def test_no_pickle_anywhere_in_a_checkpoint(tmp_path):
    from helpers import train_tiny

    result = train_tiny("dcgan", tmp_path / "run", "train.ema_decay=0.9")
    names = sorted(p.name for p in result.checkpoint.iterdir())
    assert names == ["checkpoint.json", "ema.safetensors", "model.safetensors", "state.safetensors"]


def test_published_files_get_ordinary_permissions(tmp_path):
    import os
    import stat

    from aigc.files import FILE_MODE, FOLDER_MODE, atomic_write_text

    path = atomic_write_text(tmp_path / "a.txt", "x")
    folder = ckpt.save_checkpoint(tmp_path / "c", weights={"model": {"w": torch.ones(1)}}, training_state=None, sidecar={"config": {}})
    assert stat.S_IMODE(os.stat(path).st_mode) == FILE_MODE
    assert stat.S_IMODE(os.stat(folder).st_mode) == FOLDER_MODE
    assert all(stat.S_IMODE(os.stat(p).st_mode) == FILE_MODE for p in folder.iterdir())
    assert FILE_MODE & 0o044  # readable by others under a usual umask


def test_build_optimizer_makes_what_the_config_names_over_trainable_parameters_only():
    from aigc.config import OptimConfig, build_optimizer

    frozen, trained = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1)
    frozen.requires_grad_(False)
    parameters = [*frozen.parameters(), *trained.parameters()]
    adam = build_optimizer(parameters, OptimConfig(lr=0.01, betas=(0.5, 0.9)))
    assert type(adam) is torch.optim.Adam and adam.defaults["betas"] == (0.5, 0.9) and adam.defaults["lr"] == 0.01
    assert [p for group in adam.param_groups for p in group["params"]] == list(trained.parameters())
    sgd = build_optimizer(trained.parameters(), OptimConfig(name="sgd", momentum=0.9))
    assert type(sgd) is torch.optim.SGD and sgd.defaults["momentum"] == 0.9
    assert type(build_optimizer(trained.parameters(), OptimConfig(name="rmsprop"))) is torch.optim.RMSprop


def test_pick_device_reads_the_device_setting():
    from aigc.config import pick_device

    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto") == (torch.device("cuda:0") if torch.cuda.is_available() else torch.device("cpu"))
    if torch.cuda.device_count() >= 2:
        assert pick_device("cuda", local_rank=1) == torch.device("cuda:1")  # torchrun's process on GPU 1
        assert pick_device("cuda:0", local_rank=1) == torch.device("cuda:0")  # as written, whatever the rank
