"""The command line: help everywhere, exit status 2 with a clear message on bad usage, seeded output."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from aigc.cli.main import app
from aigc.generation.outputs import read_png_text
from helpers import train_tiny

runner = CliRunner()


def aigc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aigc", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("command", [[], ["train"], ["generate"], ["models"], ["models", "list"], ["data"], ["data", "list"], ["data", "show"]])
def test_every_command_has_help(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory):
    return train_tiny("cgan", tmp_path_factory.mktemp("cgan") / "run").run_dir


def test_generate_writes_byte_identical_pngs_for_a_seed_with_metadata(cgan_run, tmp_path):
    first, second, other = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    for path, seed in ((first, "5"), (second, "5"), (other, "6")):
        result = aigc("generate", str(cgan_run), "-n", "4", "--seed", seed, "--label", "7", "--out", str(path), "--each")
        assert result.returncode == 0, result.stderr
    digest = lambda path: hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest(first) == digest(second) != digest(other)
    text = read_png_text(first)
    assert text["model"].startswith("cgan:") and text["seed"] == "5,6,7,8" and text["label"] == "7,7,7,7"
    parameters = json.loads(text["aigc"])
    assert parameters["labels"] == [7, 7, 7, 7] and parameters["step"] == 4 and len(parameters["checkpoint_sha256"]) == 16
    single = read_png_text(tmp_path / "a-seed6.png")
    assert single["seed"] == "6" and single["label"] == "7"


def test_generate_walks_a_gan_latent_between_two_seeds_from_the_cli(cgan_run, tmp_path):
    import numpy as np
    from PIL import Image

    import aigc as api

    path = tmp_path / "walk.png"
    result = aigc("generate", str(cgan_run), "--interpolate", "3,7", "--steps", "5", "--label", "2", "--out", str(path))
    assert result.returncode == 0, result.stderr
    assert json.loads(read_png_text(path)["aigc"])["interpolate"] == [3, 7]
    with Image.open(path) as picture:
        grid = np.asarray(picture)
    model = api.load(cgan_run)
    walk = model.generate(model.request_class(count=5, interpolate=(3, 7), labels=[2])).images
    size = walk.shape[1]
    ends = [model.generate(model.request_class(count=1, seed=s, labels=[2])).images[0] for s in (3, 7)]
    np.testing.assert_array_equal(walk[0], ends[0])  # the walk starts at seed 3's image and ends at seed 7's
    np.testing.assert_array_equal(walk[-1], ends[1])
    assert not np.array_equal(walk[2], ends[0]) and not np.array_equal(walk[2], ends[1])
    first = grid[2 : 2 + size, 2 : 2 + size]  # one row, 2-pixel padding
    np.testing.assert_array_equal(first.reshape(size, size, -1)[..., :1], ends[0])


def test_generate_rejects_a_label_out_of_range(cgan_run, tmp_path):
    result = aigc("generate", str(cgan_run), "--label", "12", "--out", str(tmp_path / "x.png"))
    assert result.returncode == 2
    assert "labels: label 12 is out of range" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "x.png").exists()


def test_generate_rejects_a_label_for_an_unconditional_model(tmp_path):
    run = train_tiny("dcgan", tmp_path / "run").run_dir
    result = aigc("generate", str(run), "--label", "1")
    assert result.returncode == 2 and "unconditional" in result.stderr


def test_generate_from_a_folder_without_checkpoint(tmp_path):
    result = aigc("generate", str(tmp_path))
    assert result.returncode == 2 and "holds no checkpoint" in result.stderr and "Traceback" not in result.stderr


def test_bad_usage_exits_2_with_a_message(tmp_path):
    result = aigc("train", "no-such-preset", "--out", str(tmp_path / "r"))
    assert result.returncode == 2 and "unknown preset 'no-such-preset'" in result.stderr and "dcgan-mnist" in result.stderr
    result = aigc("train", "dcgan-tiny", "--set", "model.widht=3", "--out", str(tmp_path / "r"))
    assert result.returncode == 2 and "model.widht: unknown key" in result.stderr and "valid keys in model: " in result.stderr
    result = aigc("train", "dcgan-tiny", "--set", "nonsense", "--out", str(tmp_path / "r"))
    assert result.returncode == 2 and "expected KEY=VALUE" in result.stderr
    result = aigc("train", "dcgan-folder", "--out", str(tmp_path / "r"))
    assert result.returncode == 2 and "data.path" in result.stderr
    result = aigc("generate", str(tmp_path), "-n", "0")
    assert result.returncode == 2  # typer's own range check
    assert not (tmp_path / "r").exists()


def test_train_then_resume_from_the_cli(tmp_path):
    run = tmp_path / "run"
    assert aigc("train", "gan-tiny", "--out", str(run), "--max-steps", "2").returncode == 0
    result = aigc("train", "--resume", str(run), "--max-steps", "4")
    assert result.returncode == 0, result.stderr
    assert "step 4" in result.stdout
    result = aigc("train", "gan-tiny", "--resume", str(run))
    assert result.returncode == 2 and "leave the preset out" in result.stderr


def test_models_list_json_shows_families_and_presets():
    result = runner.invoke(app, ["models", "list", "--json"])
    assert result.exit_code == 0
    listing = json.loads(result.output)
    assert {"dcgan", "wgan-gp"} <= {f["name"] for f in listing["families"]}
    presets = {p["name"]: p for p in listing["presets"]}
    for name in ("gan-mnist", "dcgan-mnist", "cgan-mnist", "wgan-mnist", "wgan-gp-mnist", "dcgan-fashion", "dcgan-folder"):
        assert name in presets
    assert presets["dcgan-fashion"]["dataset"] == "fashion-mnist" and presets["cgan-mnist"]["family"] == "cgan"


def test_every_preset_validates():
    from aigc.config import list_presets, load_config

    from aigc.registry import list_models

    families = {spec.name for spec in list_models()}
    for name in list_presets():
        config = load_config(name)
        assert config.family in families, name
        # named after their family: dcgan-mnist, t2i-cgan-mnist; audio-ae-digits is the audio-vae with beta = 0
        assert name.split("-")[0] == config.family.split("-")[0], name


def test_data_list_and_show():
    result = runner.invoke(app, ["data", "list"])
    assert result.exit_code == 0 and "digits" in result.output and "image-folder" in result.output
    result = runner.invoke(app, ["data", "show", "digits", "--image-size", "8"])
    assert result.exit_code == 0 and "num_classes: 10" in result.output and "fingerprint" in result.output


def test_python_api_mirrors_the_cli(tmp_path):
    import aigc as api

    result = api.train("dcgan-tiny", out=tmp_path / "run", max_steps=2)
    assert result.step == 2
    resumed = api.train(resume=tmp_path / "run", max_steps=3)
    assert resumed.step == 3
    batch = api.load(tmp_path / "run").generate(api.ImageRequest(count=4, seed=1))
    assert batch.images.shape == (4, 8, 8, 1)
    path = batch.save_grid(tmp_path / "grid.png")
    assert read_png_text(path)["seed"] == "1,2,3,4"


def test_export_to_a_zoo_and_load_by_name(tmp_path, monkeypatch):
    from aigc import zoo

    result = train_tiny("dcgan", tmp_path / "run", "train.ema_decay=0.9")
    entry = zoo.export(result.run_dir, "tiny-digits", preset="dcgan-tiny", overrides=["train.ema_decay=0.9"], description="test", zoo_dir=tmp_path / "zoo")
    assert entry.steps == 4 and entry.command == "aigc train dcgan-tiny --set train.ema_decay=0.9"
    folder = tmp_path / "zoo" / "tiny-digits" / "weights"
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint.json", "ema.safetensors"]  # no optimizer state
    from safetensors import safe_open

    with safe_open(str(folder / "ema.safetensors"), "pt") as weights:  # generation never uses the discriminator
        keys = list(weights.keys())
    assert any(k.startswith("generator.") for k in keys) and not any(k.startswith("discriminator.") for k in keys)
    monkeypatch.setattr(zoo, "ZOO_DIR", tmp_path / "zoo")
    monkeypatch.setattr(zoo, "MANIFEST", tmp_path / "zoo" / "manifest.json")
    monkeypatch.chdir(tmp_path)
    import aigc as api
    from aigc.generation.requests import ImageRequest

    by_name = api.load("tiny-digits").generate(ImageRequest(count=3, seed=2))
    by_run = api.load(result.run_dir).generate(ImageRequest(count=3, seed=2))
    assert (by_name.images == by_run.images).all()
    assert by_name.model == "dcgan:zoo/tiny-digits"
    assert [e.name for e in zoo.list_entries()] == ["tiny-digits"]


def test_every_public_name_of_the_package_resolves():
    """`import aigc` is lazy: each name in __all__ must import from the module it names."""
    import aigc

    for name in aigc.__all__:
        assert getattr(aigc, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute"):
        aigc.NoSuchThing  # noqa: B018


def test_cli_pngs_carry_the_a1111_parameters_that_generation_uis_read(cgan_run, tmp_path):
    from aigc.generation.metadata import parse_a1111_parameters

    path = tmp_path / "g.png"
    assert aigc("generate", str(cgan_run), "-n", "3", "--seed", "4", "--label", "2", "--out", str(path)).returncode == 0
    text = read_png_text(path)
    parsed = parse_a1111_parameters(text["parameters"])
    record = json.loads(text["aigc"])
    assert parsed["Prompt"] == "" and parsed["Seed"] == "4" and parsed["Batch size"] == "3" and parsed["Label"] == "2,2,2"
    assert parsed["Model hash"] == record["checkpoint_sha256"] and parsed["Step"] == str(record["step"]) == "4"
    assert parsed["Version"].startswith("aigc ") and record["seeds"] == [4, 5, 6]
