"""Model cards: every zoo entry has one (data and licence, training budget, intended use, limitations, the
safety settings that apply to its outputs), `aigc models show NAME` prints it, and the studio's model list
carries it for zoo models."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from aigc import zoo
from aigc.cli.main import app
from aigc.safety import SafetySettings
from aigc.safety.cards import safety_notes, zoo_card

WRITTEN = {"cgan-mnist", "dcgan-mnist", "wgan-gp-mnist", "t2i-cgan-mnist", "t2i-diffusion-mnist", "t2i-diffusion-emoji", "gpt-shakespeare", "gpt-tang"}


def test_every_zoo_entry_carries_a_complete_card():
    entries = zoo.list_entries()
    assert WRITTEN <= {e.name for e in entries}
    for entry in entries:
        card = zoo_card(entry.name)
        assert card["data"] and card["license"], entry.name
        assert card["training"]["steps"] > 0 and card["training"]["cpu_minutes"] > 0 and card["training"]["command"].startswith("aigc train "), entry.name
        assert card["intended_use"] and card["limitations"] and all(card["limitations"]), entry.name
        assert any(line.startswith("invisible watermark") for line in card["safety"]) and any(line.startswith("content credentials") for line in card["safety"]), entry.name
        if entry.name in WRITTEN:
            assert card["card_written"], f"{entry.name} has no section of its own in aigc/zoo/cards.toml"
    assert zoo_card("no-such-model") is None


def test_the_safety_lines_follow_the_model_and_the_settings():
    small = safety_notes("image", image_size=28)
    assert "invisible watermark: none (images of at least 256 px are marked; this model makes 28x28)" in small
    assert not any(line.startswith("prompts") for line in small)  # an unconditional GAN takes no prompt
    assert any("every image" in line for line in safety_notes("image", image_size=256))
    text = zoo_card("gpt-shakespeare")["safety"]
    assert any(line.startswith("prompts: moderated") for line in text) and any("green-list" in line for line in text)
    assert any(line.startswith("prompts: moderated") for line in zoo_card("t2i-diffusion-mnist")["safety"])  # text-conditioned images
    off = safety_notes("text", takes_prompt=True, settings=SafetySettings(moderation=False, watermark=False, output_checks="block"))
    assert "prompts: NOT moderated (AIGC_MODERATION=off)" in off and "invisible watermark: OFF (AIGC_WATERMARK=off)" in off
    assert "near-copy output checks: block (outputs compared with the training data)" in off


def test_models_show_prints_the_card():
    result = CliRunner().invoke(app, ["models", "show", "cgan-mnist"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    for heading in ("data", "licence: CC BY-SA 3.0", "training budget", "11,770 steps", "intended use", "limitations", "safety settings"):
        assert heading in text, heading
    assert "invisible watermark: none" in text and "Teaching class-conditional GANs" in text


def test_the_studio_model_list_carries_zoo_cards(tmp_path):
    from fastapi.testclient import TestClient
    from helpers import train_tiny

    from aigc.studio.app import create_app
    from aigc.studio.catalog import ModelCatalog
    from aigc.studio.settings import StudioSettings

    run = train_tiny("dcgan", tmp_path / "dcgan").run_dir
    settings = StudioSettings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 's.db'}", zoo=False, log_format="text", workers=0)
    with TestClient(create_app(settings, catalog=ModelCatalog.from_paths({"mine": str(run)}, zoo=True)), client=("127.0.0.1", 50000)) as client:
        models = {m["name"]: m for m in client.get("/api/v1/models").json()["models"]}
        card = models["gpt-tang"]["card"]
        assert card["intended_use"].startswith("Teaching character-level") and card["license"].startswith("MIT") and card["training"]["steps"] == 1150
        assert any("green-list" in line for line in card["safety"])
        assert "card" not in models["mine"]  # a run folder has no card
        assert client.get("/api/v1/models/dcgan-mnist").json()["card"]["limitations"]
    page = (Path(__file__).parents[1] / "src/aigc/studio/static/app.js").read_text()
    assert "showCard(state.model.card)" in page
