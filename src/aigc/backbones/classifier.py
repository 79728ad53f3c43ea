"""The project's small CNN classifier (`aigc.models.image.classifier`) as a backbone.

Two are packaged (DATA.md): `mnist-classifier` and `fashion-classifier`, trained by this project's loop
(`aigc train classifier-mnist` / `classifier-fashion`) and shipped in `aigc/metrics/weights/` as
safetensors plus a JSON card (sha256, test accuracy, training command). Any classifier trained with
`aigc train` becomes one from its run folder (`aigc.metrics.features.load_classifier_run`).

    input   float [B, C, S, S] in [-1, 1] (x / 127.5 - 1 of uint8 pixels, as in training); S = 28 for both
            packaged ones, grey
    layers  block1 .. blockN   [B, widths[i], S / 2**i, S / 2**i] after each conv block's max-pool
            features           [B, feature_dim] (128), the penultimate layer: what distances compare
            logits             [B, num_classes] (10): softmax gives the Inception Score's probabilities

The packaged weights stay in `aigc/metrics/weights/` (pyproject's package-data, the presets that retrain
them and `package_classifier` all name that folder).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

from torch import Tensor, nn

from aigc.backbones.base import Backbone
from aigc.errors import AigcError
from aigc.files import sha256_file
from aigc.registry import BACKBONES, MODELS, BackboneSpec

PACKAGED = {
    # name -> (dataset it was trained on, tag used in score labels, preset that retrains it)
    "mnist-classifier": ("mnist", "MNISTClassifier", "classifier-mnist"),
    "fashion-classifier": ("fashion-mnist", "FashionClassifier", "classifier-fashion"),
}
PACKAGED_LAYERS = {
    "block1": "[B, 32, 14, 14]", "block2": "[B, 64, 7, 7]", "block3": "[B, 128, 3, 3]",
    "features": "[B, 128]", "logits": "[B, 10]",
}


def weights_dir() -> Path:
    """Where the packaged classifier weights live (inside the installed package)."""
    return Path(str(resources.files("aigc") / "metrics" / "weights"))


class ClassifierBackbone(Backbone):
    """A trained `Classifier` with its blocks, features and logits as named layers."""

    input_range = "float x / 127.5 - 1 in [-1, 1] (as in training)"
    batch_size = 1000

    def __init__(self, classifier: nn.Module, *, name: str, tag: str):
        super().__init__()
        self.classifier = classifier
        config = classifier.config
        self.name, self.tag = name, tag
        self.input_size, self.input_channels = config.image_size, config.channels
        self.feature_dim, self.num_classes = config.feature_dim, config.num_classes
        side, shapes = config.image_size, {}
        for index, width in enumerate(config.widths, start=1):
            side //= 2
            shapes[f"block{index}"] = f"[B, {width}, {side}, {side}]"
        self.layer_shapes = {**shapes, "features": f"[B, {config.feature_dim}]", "logits": f"[B, {config.num_classes}]"}

    def check_input(self, images: Tensor) -> None:
        super().check_input(images)
        if tuple(images.shape[2:]) != (self.input_size, self.input_size):  # its linear layer fixes the size
            raise AigcError(
                f"{self.name} takes {self.input_size}x{self.input_size} images, got {images.shape[2]}x{images.shape[3]}",
                field="images",
                fix=f"resize to {self.input_size}x{self.input_size} first (aigc.data.images.fit_images)",
            )

    def walk(self, images: Tensor) -> Iterator[tuple[str, Tensor]]:
        x, block = images, 0
        for layer in self.classifier.body:  # (conv, BatchNorm, ReLU) x convs_per_block, max-pool; per block
            x = layer(x)
            if isinstance(layer, nn.MaxPool2d):
                block += 1
                yield f"block{block}", x
        # The same two steps as Classifier.features and Classifier.logits_from_features.
        features = self.classifier.embed(x.flatten(1))  # [B, feature_dim]
        yield "features", features
        yield "logits", self.classifier.logits_from_features(features)  # [B, num_classes]


def classifier_from_config(config: dict[str, Any]) -> nn.Module:
    """An untrained `Classifier`, built by name: backbones sit below the model families (import-linter)."""
    spec = MODELS.get("classifier")
    return spec.model_class(spec.config_class.model_validate(config))


def load_packaged_classifier(name: str, *, device: str = "cpu") -> ClassifierBackbone:
    """`mnist-classifier` or `fashion-classifier` from the weights shipped in the package, hash checked."""
    from safetensors.torch import load_file

    from aigc.checkpoint import load_weights

    dataset, tag, preset = PACKAGED[name]
    weights_file, card_path = weights_dir() / f"{name}.safetensors", weights_dir() / f"{name}.json"
    if not weights_file.is_file() or not card_path.is_file():
        raise AigcError(
            f"the packaged weights of {name} are missing ({weights_file})",
            field="feature_network",
            fix=f"reinstall aigc, or retrain them: aigc train {preset} --out runs/{name}, then "
            f"aigc.metrics.features.package_classifier('runs/{name}', '{name}')",
        )
    card = json.loads(card_path.read_text(encoding="utf-8"))
    digest = sha256_file(weights_file)
    if digest != card["sha256"]:
        raise AigcError(
            f"{weights_file} does not match the sha256 in {card_path.name}: the file is corrupt or was changed",
            field="feature_network",
            fix="reinstall aigc",
        )
    classifier = classifier_from_config(card["config"])
    load_weights(classifier, load_file(str(weights_file)), source=str(weights_file))
    backbone = ClassifierBackbone(classifier, name=name, tag=tag)
    backbone.weights_sha256 = digest
    backbone.weights_source = f"aigc/metrics/weights/{weights_file.name} (test accuracy {card['test_accuracy']:.4f} on {dataset})"
    return backbone.to(device).eval()


for _name, (_dataset, _tag, _preset) in PACKAGED.items():
    BACKBONES.register(_name, BackboneSpec(
        name=_name,
        load=lambda *, device="cpu", _name=_name: load_packaged_classifier(_name, device=device),
        description=f"small CNN classifier trained on {_dataset} by `aigc train {_preset}`",
        source=f"packaged: aigc/metrics/weights/{_name}.safetensors",
        layers=PACKAGED_LAYERS,
        input="28x28 grey, float x / 127.5 - 1 in [-1, 1]",
    ))
