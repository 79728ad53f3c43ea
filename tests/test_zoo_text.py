"""The zoo's text models (gpt-shakespeare, gpt-tang): shipped in the package, loaded by name offline,
seeded, and trained (they beat the same network untrained on held-out text by a wide margin); an
unknown zoo name is an error that lists the zoo; text zoo exports keep the tokenizer, drop tied copies
and may store float16."""

from __future__ import annotations

import json
import subprocess
import sys
import unicodedata

import pytest
import torch

import aigc
from aigc import zoo
from aigc.errors import CheckpointError
from conftest import require

TEXT_MODELS = ("gpt-shakespeare", "gpt-tang")


@pytest.fixture(scope="module")
def models():
    return {name: aigc.load(name) for name in TEXT_MODELS}


def held_out(corpus: str, val_fraction: float, characters: int) -> str:
    """The first `characters` of the corpus's validation part (the last val_fraction: never trained on)."""
    from aigc.data.prepare import built_file, is_prepared
    from aigc.data.text import split_text

    require(is_prepared(corpus, (f"{corpus}.txt",)), f"the {corpus} corpus: run `aigc data prepare {corpus}`")
    text = built_file(corpus, f"{corpus}.txt", f"aigc data prepare {corpus}").read_text(encoding="utf-8")
    return split_text(text, val_fraction)[1][:characters]


def nats_per_char(module: torch.nn.Module, text: str) -> float:
    from aigc.data.text import TokenChunks, encode_text
    from aigc.models.text.common import evaluate_split

    tokens = encode_text(module.tokenizer, text)
    split = TokenChunks(tokens, module.config.context_length, len(text), module.tokenizer.to_json())
    return evaluate_split(module, split)["nats_per_char"]


def test_the_zoo_lists_the_text_models_with_their_data_and_licence():
    entries = {entry.name: entry for entry in zoo.list_entries()}
    for name in TEXT_MODELS:
        entry = entries[name]
        assert entry.modality == "text" and entry.family == "gpt" and entry.steps > 0
        assert entry.data_source and entry.license and entry.description
        assert "val/nats_per_char" in entry.metrics
        # small enough to ship: weights-only, tied copies left out, float16
        size = sum(path.stat().st_size for path in (entry.path / "weights").iterdir())
        assert size < 8_000_000, f"{name}: {size} bytes"
    assert "public domain" in entries["gpt-shakespeare"].license.lower()
    assert "MIT" in entries["gpt-tang"].license


def test_zoo_text_models_generate_the_same_text_for_a_seed(models):
    for name, prompt in (("gpt-shakespeare", "ROMEO:"), ("gpt-tang", "春")):
        request = aigc.TextRequest(prompt=prompt, max_tokens=40, seed=0)
        first = models[name].generate(request)
        again = models[name].generate(request)
        other = models[name].generate(request.model_copy(update={"seed": 1}))
        assert first.texts == again.texts and first.texts != other.texts
        assert first.model == f"gpt:zoo/{name}" and first.token_counts[0] > 0


def test_the_tang_model_writes_chinese(models):
    sample = models["gpt-tang"].generate(aigc.TextRequest(prompt="春", max_tokens=100, seed=0, count=2))
    text = "".join(sample.texts).replace("\n", "")
    ideographs = sum(unicodedata.name(c, "").startswith("CJK UNIFIED IDEOGRAPH") for c in text)
    assert len(text) > 100 and ideographs / len(text) > 0.7, text


@pytest.mark.parametrize("name, corpus, characters, trained_below, untrained_above", [
    ("gpt-shakespeare", "shakespeare", 10_000, 2.0, 2.5),  # this slice 1.72, untrained 2.90; whole split 1.58
    ("gpt-tang", "tang-poems", 2_000, 5.8, 8.5),  # slice 5.34, untrained 9.15, character frequencies 6.79; whole split 4.98
])
def test_zoo_text_models_predict_held_out_text_far_better_than_untrained(models, name, corpus, characters, trained_below, untrained_above):
    """Nats per character on the first characters of the validation split (never trained on); the same
    network untrained scores about ln(vocabulary) per token."""
    from aigc.loading import build_model

    model = models[name]
    text = held_out(corpus, model.info.config.data.val_fraction, characters)
    trained = nats_per_char(model.module, text)
    torch.manual_seed(0)
    untrained = nats_per_char(build_model(model.info.config).eval(), text)
    assert trained < trained_below < untrained_above < untrained, (trained, untrained)


def test_an_unknown_model_name_lists_the_zoo():
    with pytest.raises(CheckpointError) as error:
        aigc.load("no-such-model")
    message = str(error.value)
    assert "no-such-model" in message and "aigc models list" in message
    assert all(name in message for name in ("gpt-shakespeare", "gpt-tang", "dcgan-mnist"))


def test_the_cli_generates_with_a_zoo_text_model_and_names_the_zoo_for_a_typo(models, tmp_path):
    from typer.testing import CliRunner

    from aigc.cli.main import app

    out = tmp_path / "romeo.txt"
    result = CliRunner().invoke(app, ["generate", "gpt-shakespeare", "--prompt", "ROMEO:", "--max-tokens", "30", "--seed", "0", "--out", str(out)])
    assert result.exit_code == 0, result.output
    from aigc.safety import default_policy  # the CLI samples through it (the text watermark steers sampling)

    same = models["gpt-shakespeare"].generate(aigc.TextRequest(prompt="ROMEO:", max_tokens=30, seed=0), policy=default_policy())
    assert out.read_text(encoding="utf-8").rstrip("\n") == same.texts[0].rstrip("\n")  # the continuation, as from Python
    assert json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))["model"] == "gpt:zoo/gpt-shakespeare"
    typo = subprocess.run([sys.executable, "-m", "aigc", "generate", "gpt-shakespear", "--prompt", "ROMEO:"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert typo.returncode == 2 and "Traceback" not in typo.stderr
    assert "gpt-shakespeare" in typo.stderr and "aigc models list" in typo.stderr


def test_the_studio_catalog_offers_text_and_image_zoo_models():
    from aigc.studio.catalog import ModelCatalog

    catalog = ModelCatalog.from_paths({}, zoo=True)
    modalities = {entry.name: entry.modality for entry in catalog.entries()}
    assert modalities["gpt-shakespeare"] == modalities["gpt-tang"] == "text" and modalities["dcgan-mnist"] == "image"
    fields = {field["name"] for field in catalog.get("gpt-tang").accepts(max_count=8)}
    assert {"prompt", "max_tokens", "temperature", "seed"} <= fields


def test_the_studio_serves_a_zoo_text_model(tmp_path):
    """What `make run` serves: the zoo's text models next to its image models, and a text job that finishes."""
    import time

    from fastapi.testclient import TestClient

    from aigc.studio.app import create_app
    from aigc.studio.settings import StudioSettings

    settings = StudioSettings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'studio.db'}", zoo=True,
                              log_format="text", poll_seconds=0.2)
    with TestClient(create_app(settings), client=("127.0.0.1", 50000)) as client:
        job = client.post("/api/v1/jobs", json={"model": "gpt-tang", "params": {"prompt": "春", "max_tokens": 30, "seed": 0}})
        assert job.status_code == 202, job.text
        for _ in range(300):
            state = client.get(f"/api/v1/jobs/{job.json()['id']}").json()
            if state["status"] not in ("queued", "running"):
                break
            time.sleep(0.2)
        assert state["status"] == "succeeded", state
        [artifact] = state["artifacts"]
        text = client.get(artifact["url"]).text
        assert artifact["kind"] == "text" and sum("\u4e00" <= c <= "\u9fff" for c in text) >= 15, text


def test_a_text_export_keeps_the_tokenizer_drops_the_tied_copy_and_can_store_float16(tmp_path, monkeypatch):
    from safetensors import safe_open

    from helpers import train_tiny

    run = train_tiny("gpt", tmp_path / "run").run_dir
    entry = zoo.export(run, "tiny-text", preset="gpt-tiny", overrides=[], description="tiny", precision="float16", data_source="built in",
                       license="test", metrics={"val/nats_per_char": 3.0}, zoo_dir=tmp_path / "zoo")
    folder = tmp_path / "zoo" / "tiny-text" / "weights"
    with safe_open(str(folder / "model.safetensors"), "pt") as weights:
        keys = set(weights.keys())
        dtypes = {weights.get_tensor(key).dtype for key in keys}
    assert "token_embedding.weight" in keys and "output.weight" not in keys and dtypes == {torch.float16}
    sidecar = json.loads((folder / "checkpoint.json").read_text(encoding="utf-8"))
    assert sidecar["config"]["model"]["tokenizer"] and sidecar["tied"] == ["output.weight"]
    assert entry.precision == "float16" and entry.metrics["val/nats_per_char"] == 3.0
    monkeypatch.setattr(zoo, "ZOO_DIR", tmp_path / "zoo")
    monkeypatch.setattr(zoo, "MANIFEST", tmp_path / "zoo" / "manifest.json")
    by_name, by_run = aigc.load("tiny-text"), aigc.load(run)
    assert by_name.module.output.weight.data_ptr() == by_name.module.token_embedding.weight.data_ptr()
    torch.testing.assert_close(by_name.module.output.weight, by_run.module.output.weight, atol=1e-3, rtol=1e-3)
    ids = torch.tensor([by_run.module.tokenizer.encode("the cat")])
    with torch.no_grad():  # float16 storage rounds the weights; the logits barely move
        torch.testing.assert_close(by_name.module(ids), by_run.module(ids), atol=1e-2, rtol=1e-2)
    # a re-export (what `aigc models retrain` does) keeps the precision, data source and licence
    again = zoo.export(run, "tiny-text", preset="gpt-tiny", overrides=[], zoo_dir=tmp_path / "zoo")
    assert (again.precision, again.data_source, again.license, again.description) == ("float16", "built in", "test", entry.description)
