"""--export onnx: GAN generators and the GPT as ONNX graphs that onnxruntime runs like PyTorch (max
difference recorded), `--backend onnxruntime` generation, and clear refusals (int8 layers, families
without an export, a graph that disagrees, a run without an export)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import aigc
from aigc.errors import AigcError
from aigc.generation.requests import LatentImageRequest
from aigc.generation.text import TextRequest
from aigc.optimize.export import export_onnx, with_backend
from aigc.optimize.pipeline import Plan, optimize
from aigc.optimize.report import Settings
from conftest import has_module, require
from helpers import train_tiny

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    require(all(has_module(m) for m in ("onnx", "onnxscript", "onnxruntime")), "pip install 'aigc[export]'")
    run = tmp_path_factory.mktemp("gan") / "run"
    train_tiny("cgan", run, "model.image_size=16", "train.max_steps=2")  # class labels: a second graph input
    return run


def test_a_gan_generator_exports_matches_pytorch_and_generates_through_onnxruntime(gan_run, tmp_path):
    out = tmp_path / "onnx-run"
    optimize(gan_run, out, Plan(export="onnx"), settings=Settings(repeats=1, images=4), measure_quality=False)
    record = json.loads((out / "onnx" / "onnx.json").read_text())
    assert record["inputs"] == ["noise", "labels"] and record["max_abs_difference"] < 1e-4
    report = json.loads((out / "optimize.json").read_text())
    assert report["onnxruntime"]["latency_s"] > 0 and "speedup_onnxruntime" in report["ratios"]
    request = LatentImageRequest(count=5, seed=2, labels=[0, 1, 2, 3, 4])
    eager = aigc.load(out).generate(request)
    runtime = with_backend(aigc.load(out), "onnxruntime").generate(request)
    assert runtime.images.shape == eager.images.shape  # a batch of 5: the batch axis is dynamic
    assert np.abs(runtime.images.astype(int) - eager.images.astype(int)).max() <= 1  # uint8 rounding at most
    command = [sys.executable, "-m", "aigc", "generate", str(out), "--backend", "onnxruntime", "-n", "3", "--seed", "1"]
    cli = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    assert (out / "generated" / "seed-1.png").is_file()


def test_the_gpt_exports_with_its_kv_cache_and_generates_the_same_text_through_onnxruntime(tmp_path):
    require(has_module("onnxruntime"), "pip install 'aigc[export]'")
    run = tmp_path / "gpt"
    train_tiny("gpt", run)
    paths = export_onnx(aigc.load(run), tmp_path / "gpt-onnx")
    record = json.loads(paths[-1].read_text())
    assert record["dynamic_axes"]["ids"] == {"0": "batch", "1": "length"} and record["max_abs_difference"] < 1e-4
    prefill, decode = record["graphs"]
    assert prefill["outputs"] == ["logits", "keys", "values"] and decode["inputs"] == ["ids", "past_keys", "past_values"]
    assert decode["dynamic_axes"]["past_keys"] == {"0": "batch", "3": "past"} and decode["max_abs_difference"] < 1e-4
    # Both graphs point into one weights file: the export holds the model's weights once, not twice (plus the
    # tied embedding's transposed copy, which the traced output matmul keeps as a constant).
    import onnx

    weights = tmp_path / "gpt-onnx" / record["shared_weights"]["file"]
    parameters = sum(p.numel() * 4 for p in aigc.load(run).module.parameters() if p.numel() * 4 >= 1024)
    assert weights in paths and parameters <= weights.stat().st_size < 1.5 * parameters
    places = [{tuple((e.key, e.value) for e in t.external_data) for t in onnx.load(str(path), load_external_data=False).graph.initializer
               if t.data_location == onnx.TensorProto.EXTERNAL} for path in paths[:2]]
    assert places[0] and places[0] == places[1]  # the same bytes of the same file, not a copy each
    out = tmp_path / "gpt-run"
    optimize(run, out, Plan(export="onnx"), settings=Settings(repeats=1, tokens=8), measure_quality=False)
    eager, runtime = aigc.load(out), with_backend(aigc.load(out), "onnxruntime")
    assert eager.module.config.context_length == 16  # 40 new tokens: the context slides (prefilled again) twice
    for request in (TextRequest(prompt="th", max_tokens=40, min_tokens=40, seed=3, count=3),  # 3 rows, sampled
                    TextRequest(prompt="a", max_tokens=12, num_beams=3, count=2)):  # beam search reorders the cache rows
        assert runtime.generate(request).texts == eager.generate(request).texts
    assert json.loads((out / "optimize.json").read_text())["onnxruntime"]["latency_s"] > 0
    optimize(run, tmp_path / "int8", Plan(quantize="dynamic"), measure=False)
    with pytest.raises(AigcError, match=r"no ONNX export: .*qkv \(quantized::linear_dynamic\)"):
        export_onnx(aigc.load(tmp_path / "int8"), tmp_path / "int8-onnx")
    with pytest.raises(AigcError, match="int8 network has no ONNX export"):
        optimize(run, tmp_path / "both", Plan(quantize="dynamic", export="onnx"), measure=False)


def test_a_graph_that_disagrees_with_pytorch_fails_with_the_difference(gan_run, tmp_path):
    with pytest.raises(AigcError, match=r"differ from PyTorch's by up to .*tolerance 1e-12"):
        export_onnx(aigc.load(gan_run), tmp_path / "strict", tolerance=1e-12)


def test_families_without_an_export_and_bad_backends_are_refused(gan_run, tmp_path):
    run = tmp_path / "vae"
    train_tiny("vae", run)
    with pytest.raises(AigcError, match="no ONNX export for the vae family yet"):
        export_onnx(aigc.load(run), tmp_path / "vae-onnx")
    with pytest.raises(AigcError, match="unknown backend 'tensorrt'") as error:
        with_backend(aigc.load(gan_run), "tensorrt")
    assert "onnxruntime" in error.value.fix
    with pytest.raises(AigcError, match="has no ONNX export") as error:
        with_backend(aigc.load(gan_run), "onnxruntime")
    assert "--export onnx" in error.value.fix


def test_a_diffusion_unet_exports_and_the_python_sampler_runs_it_through_onnxruntime(tmp_path):
    require(has_module("onnxruntime"), "pip install 'aigc[export]'")
    run = train_tiny("ddpm", tmp_path / "ddpm", "train.max_steps=2").run_dir
    out = tmp_path / "ddpm-onnx"
    optimize(run, out, Plan(export="onnx"), measure=False)
    record = json.loads((out / "onnx" / "onnx.json").read_text())
    assert record["inputs"][:2] == ["sample", "timesteps"] and record["max_abs_difference"] < 1e-4
    loaded = aigc.load(out)
    request = loaded.module.preview_request().model_copy(update={"count": 2, "sample_steps": 3})
    eager = loaded.generate(request)
    runtime = with_backend(aigc.load(out), "onnxruntime").generate(request)
    assert np.abs(runtime.images.astype(int) - eager.images.astype(int)).max() <= 1
