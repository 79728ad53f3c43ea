"""Fine-tuning from another run (train.init_from / --init-from), and freezing parameters (train.freeze)."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

import aigc
from aigc import checkpoint as ckpt
from aigc.cli.main import app
from aigc.errors import AigcError, ConfigError
from aigc.registry import list_models
from aigc.training.callbacks import Callback
from helpers import StopAt, assert_same_tensors, tiny, train_tiny, weights

runner = CliRunner()
FAMILIES = [spec.name for spec in list_models()]


class Snapshot(Callback):
    """The model's state when training starts (after the parent's weights went in) and ends."""

    def on_fit_start(self, state):
        self.initial = {k: v.detach().clone() for k, v in state.model.state_dict().items()}

    def on_fit_end(self, state):
        self.final = {k: v.detach().clone() for k, v in state.model.state_dict().items()}


@pytest.fixture(scope="module")
def gpt_parent(tmp_path_factory):
    return train_tiny("gpt", tmp_path_factory.mktemp("parent") / "run")


def sidecar(result) -> dict:
    return json.loads((result.checkpoint / ckpt.SIDECAR).read_text())


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_starts_from_its_parents_weights_with_a_fresh_optimizer(family, tmp_path):
    parent = train_tiny(family, tmp_path / "parent")
    snapshot = Snapshot()
    child = train_tiny(family, tmp_path / "child", f"train.init_from={str(parent.run_dir)!r}", "train.max_steps=2", callbacks=[snapshot])
    parent_weights = ckpt.read_weights(parent.checkpoint, "ema" if (parent.checkpoint / "ema.safetensors").exists() else "model", ckpt.read_sidecar(parent.checkpoint))
    assert_same_tensors({k: snapshot.initial[k] for k in parent_weights}, parent_weights)
    record = sidecar(child)["init_from"]
    assert record["sha256"] == ckpt.read_sidecar(parent.checkpoint)["files"][f"{record['weights']}.safetensors"]
    assert record["family"] == family and record["step"] == parent.step and record["kept_fresh"] == []
    # Fresh optimizer and schedule: the child counts its own steps (Adam's step is at most 2, not the parent's + 2;
    # a critic-first GAN steps its generator less often).
    state = ckpt.read_training_state(child.checkpoint, ckpt.read_sidecar(child.checkpoint))
    assert child.step == 2 and state["step"] == 2
    for optimizer in state["optimizers"].values():
        assert all(1 <= int(entry["step"]) <= 2 for entry in optimizer["state"].values() if "step" in entry)


def test_a_text_model_keeps_its_parents_tokenizer(gpt_parent, tmp_path):
    corpus = tmp_path / "new.txt"
    corpus.write_text("to be or not to be, that is the question\n" * 20, encoding="utf-8")
    child = train_tiny("gpt", tmp_path / "child", f"train.init_from={str(gpt_parent.run_dir)!r}", 'data.name="text"', f"data.path={str(corpus)!r}", "train.max_steps=1")
    parent_model = ckpt.read_sidecar(gpt_parent.checkpoint)["config"]["model"]
    child_model = sidecar(child)["config"]["model"]
    assert child_model["tokenizer"] == parent_model["tokenizer"] and child_model["vocab_size"] == parent_model["vocab_size"]


def test_a_different_tokenizer_or_vocabulary_is_a_clear_error(gpt_parent, tmp_path):
    init = f"train.init_from={str(gpt_parent.run_dir)!r}"
    with pytest.raises(ConfigError, match="model.tokenizer_kind is 'word', but .* was trained with 'char'") as error:
        train_tiny("gpt", tmp_path / "a", init, 'model.tokenizer_kind="word"')
    assert error.value.field == "model.tokenizer_kind"
    chinese = tmp_path / "poems.txt"
    chinese.write_text("床前明月光，疑是地上霜。举头望明月，低头思故乡。\n" * 10, encoding="utf-8")
    with pytest.raises(ConfigError, match="of the training tokens are unknown to the tokenizer"):
        train_tiny("gpt", tmp_path / "b", init, 'data.name="text"', f"data.path={str(chinese)!r}")


def test_shape_mismatches_are_listed_and_allow_partial_keeps_fresh_weights_for_them(gpt_parent, tmp_path):
    init = f"train.init_from={str(gpt_parent.run_dir)!r}"
    with pytest.raises(ConfigError, match=r"blocks\.0\.mlp\.fc\.weight: parent \(64, 16\) vs model \(32, 16\)") as error:
        train_tiny("gpt", tmp_path / "a", init, "model.mlp_ratio=2")
    assert "--allow-partial" in str(error.value)
    snapshot = Snapshot()
    with pytest.warns(UserWarning, match="kept fresh: blocks.0.mlp.fc.weight, blocks.0.mlp.proj.weight"):
        child = train_tiny("gpt", tmp_path / "b", init, "model.mlp_ratio=2", "train.allow_partial_init=true", "train.max_steps=1", callbacks=[snapshot])
    assert sidecar(child)["init_from"]["kept_fresh"] == ["blocks.0.mlp.fc.weight", "blocks.0.mlp.proj.weight"]
    parent_weights = weights(gpt_parent.checkpoint)
    assert torch.equal(snapshot.initial["blocks.0.attention.qkv.weight"], parent_weights["blocks.0.attention.qkv.weight"])


def test_another_family_or_modality_is_a_clear_error(gpt_parent, tmp_path):
    with pytest.raises(ConfigError, match=r"is a text model \(gpt\); this run trains dcgan \(image\)") as error:
        train_tiny("dcgan", tmp_path / "a", f"train.init_from={str(gpt_parent.run_dir)!r}")
    assert error.value.field == "train.init_from"
    gan = train_tiny("dcgan", tmp_path / "gan")
    with pytest.raises(ConfigError, match=r"is another family \(dcgan\); this run trains vae"):
        train_tiny("vae", tmp_path / "b", f"train.init_from={str(gan.run_dir)!r}")
    with pytest.raises(AigcError, match="no zoo model is called 'no-such-model'"):
        train_tiny("gpt", tmp_path / "c", "train.init_from='no-such-model'")


def test_a_zoo_model_by_name(tmp_path):
    snapshot = Snapshot()
    child = aigc.train("dcgan-mnist", overrides=["train.init_from='dcgan-mnist'", "data.limit=64", "train.max_steps=1", "train.sample_every=0",
                                                   "train.progress=false", "train.tensorboard=false"], out=tmp_path / "child", callbacks=[snapshot])
    record = sidecar(child)["init_from"]
    assert record["source"] == "dcgan-mnist" and record["weights"] == "ema"
    zoo_checkpoint = ckpt.resolve_checkpoint(aigc.zoo.resolve("dcgan-mnist"))
    zoo_weights = ckpt.read_tensors(zoo_checkpoint, "ema.safetensors", ckpt.read_sidecar(zoo_checkpoint))
    assert record["sha256"] == ckpt.read_sidecar(zoo_checkpoint)["files"]["ema.safetensors"]
    assert all(torch.equal(snapshot.initial[k], v) for k, v in zoo_weights.items())


def test_an_export_without_its_discriminator_fine_tunes_with_a_fresh_one_without_asking(tmp_path):
    parent = train_tiny("dcgan", tmp_path / "parent")
    aigc.zoo.export(parent.run_dir, "tiny-gan", preset="dcgan-tiny", overrides=[], zoo_dir=tmp_path / "zoo")
    snapshot = Snapshot()
    child = train_tiny("dcgan", tmp_path / "child", f"train.init_from={str(tmp_path / 'zoo' / 'tiny-gan' / 'weights')!r}", "train.max_steps=1", callbacks=[snapshot])
    fresh = sidecar(child)["init_from"]["kept_fresh"]
    assert fresh and all(name.startswith("discriminator.") for name in fresh)
    exported = weights(tmp_path / "zoo" / "tiny-gan" / "weights")
    assert not any(k.startswith("discriminator.") for k in exported)
    assert all(torch.equal(snapshot.initial[k], v) for k, v in exported.items())


def test_a_fine_tuning_run_resumes_exactly_without_reading_its_parent_again(tmp_path):
    parent = train_tiny("gpt", tmp_path / "parent")
    init = f"train.init_from={str(parent.run_dir)!r}"
    whole = train_tiny("gpt", tmp_path / "whole", init, "train.max_steps=4", "train.freeze=['blocks.0.attention.*']")
    train_tiny("gpt", tmp_path / "part", init, "train.max_steps=4", "train.freeze=['blocks.0.attention.*']", "train.checkpoint_every=2", callbacks=[StopAt(2)])
    (parent.checkpoint / "model.safetensors").unlink()  # a resumed run never reads the parent
    resumed = aigc.train(resume=tmp_path / "part")
    assert resumed.step == 4
    assert_same_tensors(weights(resumed.checkpoint), weights(whole.checkpoint))
    assert sidecar(resumed)["init_from"] == sidecar(whole)["init_from"] | {"checkpoint": sidecar(resumed)["init_from"]["checkpoint"]}


# --------------------------------------------------------------------------------------------- freeze


def test_frozen_parameters_stay_bitwise_unchanged_and_the_others_train(gpt_parent, tmp_path):
    # AdamW with weight decay 0.1: a frozen weight that reached the optimizer would still shrink.
    snapshot = Snapshot()
    child = train_tiny("gpt", tmp_path / "child", f"train.init_from={str(gpt_parent.run_dir)!r}", "train.freeze=['blocks.*', 'norm.*']", "train.max_steps=3", callbacks=[snapshot])
    frozen = [k for k in snapshot.initial if k.startswith(("blocks.", "norm."))]
    assert frozen and sidecar(child)["frozen"] == len(frozen)
    for key in frozen:
        assert torch.equal(snapshot.final[key], snapshot.initial[key]), key
    assert not torch.equal(snapshot.final["token_embedding.weight"], snapshot.initial["token_embedding.weight"])


def test_freezing_works_with_ema_and_a_gans_two_optimizers(tmp_path):
    snapshot = Snapshot()
    result = train_tiny("dcgan", tmp_path / "run", "train.freeze=['generator.network.project.*']", "train.ema_decay=0.9", callbacks=[snapshot])
    ema = weights(result.checkpoint, "ema")
    for key in (k for k in snapshot.initial if k.startswith("generator.network.project.") and "running" not in k and "num_batches" not in k):
        assert torch.equal(snapshot.final[key], snapshot.initial[key]) and torch.equal(ema[key], snapshot.initial[key]), key
    assert not torch.equal(snapshot.final["discriminator.head.weight"], snapshot.initial["discriminator.head.weight"])


def test_a_freeze_pattern_that_matches_nothing_lists_the_modules(tmp_path):
    with pytest.raises(ConfigError, match="pattern 'encoder.\\*' matches no parameter") as error:
        train_tiny("gpt", tmp_path / "run", "train.freeze=['encoder.*']")
    assert error.value.field == "train.freeze"
    assert "blocks.0.attention.qkv" in str(error.value) and "token_embedding" in str(error.value)


def test_freezing_a_whole_optimizers_parameters_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="leave one of the model's optimizers nothing to train"):
        train_tiny("dcgan", tmp_path / "run", "train.freeze=['generator.*']")


# ------------------------------------------------------------------------------------------------ CLI


def test_cli_init_from_and_allow_partial(gpt_parent, tmp_path):
    out = tmp_path / "child"
    result = runner.invoke(app, ["train", "gpt-tiny", "--init-from", str(gpt_parent.run_dir), "--set", "model.mlp_ratio=2", "--allow-partial", "--out", str(out)])
    assert result.exit_code == 0, result.output
    record = ckpt.read_sidecar(ckpt.resolve_checkpoint(out))["init_from"]
    assert record["source"] == str(gpt_parent.run_dir) and record["kept_fresh"]
    generated = aigc.load(out).generate(aigc.generation.text.TextRequest(prompt="a", max_tokens=5, seed=1))
    assert isinstance(generated.text, str)


def test_cli_init_from_errors_are_one_clear_line(gpt_parent, tmp_path):
    import subprocess
    import sys

    def aigc_cli(*args):
        return subprocess.run([sys.executable, "-m", "aigc", *args], capture_output=True, text=True, timeout=120)

    result = aigc_cli("train", "dcgan-tiny", "--init-from", str(gpt_parent.run_dir), "--out", str(tmp_path / "a"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "train.init_from:" in result.stderr and "a text model (gpt)" in result.stderr
    result = aigc_cli("train", "--resume", str(gpt_parent.run_dir), "--init-from", str(gpt_parent.run_dir))
    assert result.returncode == 2 and "--init-from starts a new run" in result.stderr
