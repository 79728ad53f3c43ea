"""`aigc generate --compile`: the generator or U-Net through torch.compile where benchmarks/compile_speed.py
showed it pays (the same images as eager), eager generation with a warning that says why everywhere else."""

from __future__ import annotations

import numpy as np
import pytest

import aigc
from aigc.errors import AigcError, AigcWarning
from aigc.generation.requests import LatentImageRequest
from aigc.optimize.compile import MEASURED, with_compile
from helpers import tiny_run


def test_families_where_compiling_does_not_pay_generate_eagerly_and_say_why(tmp_path_factory, monkeypatch):
    gpt = aigc.load(tiny_run(tmp_path_factory, "gpt"))
    with pytest.warns(AigcWarning, match="gpt generates eagerly: only GAN generators and diffusion U-Nets"):
        assert with_compile(gpt) is gpt
    assert not hasattr(gpt.module.forward, "_torchdynamo_orig_callable")
    # A figure below 1 in the table of measurements (here a made-up one) keeps that network eager.
    monkeypatch.setitem(MEASURED, "unet", ("diffusion U-Net", 0.8, "a test figure", 1.0))
    ddpm = aigc.load(tiny_run(tmp_path_factory, "ddpm", "train.max_steps=1"))
    network = ddpm.module.unet
    with pytest.warns(AigcWarning, match=r"not applied: a compiled diffusion U-Net generated 0\.80x as fast as eager \(a test figure"):
        assert with_compile(ddpm) is ddpm
    assert ddpm.module.unet is network


def test_compile_and_the_onnxruntime_backend_are_one_or_the_other(tmp_path_factory):
    from typer.testing import CliRunner

    from aigc.cli.main import app

    run = tiny_run(tmp_path_factory, "dcgan", "model.image_size=16", "train.max_steps=1")
    result = CliRunner().invoke(app, ["generate", str(run), "--compile", "--backend", "onnxruntime", "-n", "1"])
    assert isinstance(result.exception, AigcError) and "use one of --compile and --backend onnxruntime" in str(result.exception)


@pytest.mark.slow
def test_a_compiled_gan_generator_makes_the_same_images_as_eager(tmp_path_factory):
    run = tiny_run(tmp_path_factory, "dcgan", "model.image_size=16", "train.max_steps=1")
    eager, compiled = aigc.load(run), aigc.load(run)
    with pytest.warns(AigcWarning, match=r"first request compiles the GAN generator .* ran 1\.\d+x as fast as eager"):
        with_compile(compiled)  # measured to pay
    assert compiled.module.generator is not eager.module.generator and hasattr(compiled.module.generator, "_orig_mod")
    request = LatentImageRequest(count=3, seed=4)
    a, b = eager.generate(request).images, compiled.generate(request).images
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
