"""The one Registry type (aigc/registry.py): register, get with the known names, list, providers imported
on the first lookup; and the registries built on it (families, datasets, schedulers, backbones)."""

from __future__ import annotations

import sys

import pytest

from aigc import registry
from aigc.errors import ConfigError
from aigc.registry import MODELS, SCHEDULERS, Registry


def test_register_get_names_and_specs():
    exporters = Registry("exporter", field="--format")
    exporters.register("onnx", "ONNX spec")
    exporters.register("coreml", "Core ML spec")
    assert exporters.get("onnx") == "ONNX spec" and "coreml" in exporters and "tflite" not in exporters
    assert exporters.names() == ["coreml", "onnx"] and exporters.specs() == ["Core ML spec", "ONNX spec"]
    assert list(exporters) == ["coreml", "onnx"]
    with pytest.raises(RuntimeError, match="exporter 'onnx' is registered twice"):
        exporters.register("onnx", "another")
    with pytest.raises(ConfigError, match="unknown exporter 'tflite'") as error:
        exporters.get("tflite")
    assert error.value.field == "--format" and error.value.fix == "use one of: coreml, onnx"


def test_providers_are_imported_on_the_first_lookup(tmp_path, monkeypatch):
    moderators = Registry("moderator", field="policy.moderator", providers=("h3_test_moderators",))
    (tmp_path / "h3_test_moderators.py").write_text(
        "from test_registry import MODERATORS\nMODERATORS.register('blocklist', 'a word list')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys.modules[__name__], "MODERATORS", moderators, raising=False)
    assert "h3_test_moderators" not in sys.modules
    assert moderators.get("blocklist") == "a word list"  # imported now, by the lookup
    assert moderators.names() == ["blocklist"]  # and only once: no "registered twice"
    monkeypatch.delitem(sys.modules, "h3_test_moderators")


def test_the_builtin_registries_find_their_entries():
    assert registry.get_model("dcgan").name == "dcgan" and "dcgan" in [spec.name for spec in registry.list_models()]
    assert registry.get_dataset("digits").modality == "image"
    assert registry.get_prompt_encoder("minilm").dim == 384
    from aigc.schedulers import DDIMScheduler

    assert SCHEDULERS.get("ddim") is DDIMScheduler and SCHEDULERS.names() == ["ddim", "ddpm", "dpmpp-2m"]
    with pytest.raises(ConfigError, match="unknown diffusion scheduler 'euler'") as error:
        SCHEDULERS.get("euler")
    assert error.value.field == "model.sampler" and "ddim, ddpm, dpmpp-2m" in error.value.fix
    with pytest.raises(ConfigError, match="unknown model family 'stylegan'") as error:
        registry.get_model("stylegan")
    assert "dcgan" in error.value.fix and error.value.field == "family"


def test_register_variant_makes_a_named_subclass_per_family(monkeypatch):
    monkeypatch.setattr(MODELS, "_specs", dict(MODELS._specs))  # this test's family is gone afterwards
    base = registry.get_model("dcgan").model_class.__mro__[1]  # the GAN class every GAN variant shares
    config = registry.get_model("dcgan").config_class
    variant = registry.register_variant("test-gan", base, modality="image", config=config, description="a test", marker=1)
    spec = registry.get_model("test-gan")
    assert spec.model_class is variant and issubclass(variant, base) and variant is not base
    assert variant.family_name == "test-gan" and variant.marker == 1 and variant.__doc__ == "a test"
    assert variant.__name__ == "TEST_GANModel" and spec.config_class is config and spec.modality == "image"
