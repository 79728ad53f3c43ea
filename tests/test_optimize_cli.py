"""`aigc optimize`: writes a run folder that `aigc generate` and `aigc eval` use like any other, prints the
report table, compares two runs with --report-only, and says clearly what was wrong with bad options."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from aigc.errors import AigcError
from helpers import tiny_run


def aigc(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aigc", *args], capture_output=True, text=True, timeout=300, cwd=cwd,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    return tiny_run(tmp_path_factory, "dcgan", "model.image_size=16", "train.max_steps=4")


def test_an_optimised_run_generates_evaluates_and_compares_from_the_command_line(gan_run, tmp_path):
    out = tmp_path / "small"
    made = aigc("optimize", str(gan_run), "--out", str(out), "--prune", "0.5", "--structured", "--quantize", "dynamic",
                "--repeats", "1", "--samples", "20", "--feature-network", "mnist-classifier")
    assert made.returncode == 0, made.stderr
    assert "| original:" in made.stdout and "prune-channels, quantize-dynamic" in made.stdout
    assert "stay float32" in made.stderr and "Traceback" not in made.stderr  # the convs have no dynamic int8 kernel
    assert json.loads((out / "optimize.json").read_text())["optimized"]["transforms"] == ["prune-channels", "quantize-dynamic"]
    generated = aigc("generate", str(out), "-n", "2", "--seed", "1")
    assert generated.returncode == 0, generated.stderr
    assert (out / "generated" / "seed-1.png").is_file()
    scored = aigc("eval", str(out), "--metrics", "fid", "-n", "20", "--feature-network", "mnist-classifier")
    assert scored.returncode == 0, scored.stderr
    assert json.loads((out / "eval.json").read_text())["subject"]["run"] == str(out)
    compared = aigc("optimize", "--report-only", str(gan_run), str(out), "--repeats", "1", "--no-quality", "--json")
    assert compared.returncode == 0, compared.stderr
    assert json.loads(compared.stdout)["ratios"]["file_bytes"] > 1
    again = aigc("optimize", str(gan_run), "--out", str(out), "--prune", "0.5", "--no-quality")
    assert again.returncode == 2 and "already holds a run" in again.stderr and "--force" in again.stderr


@pytest.mark.parametrize("args, message", [
    (["--out", "X"], "nothing to do"),
    (["--out", "X", "--structured"], "no --prune amount"),
    (["--out", "X", "--quantize", "float4"], "unknown quantisation 'float4'"),
    (["--out", "X", "--quantize", "static", "--calibrate", "0"], "--calibrate takes a number"),
    (["--out", "X", "--prune", "0.5", "--finetune", "-3"], "--finetune"),
    (["--out", "X", "--export", "tflite"], "unknown export format 'tflite'"),
    (["--out", "X", "--low-rank", "0"], "whole number >= 1"),
    (["--out", "X", "--distill", "dcgan-tiny", "--quantize", "dynamic"], "--distill trains a new network"),
    (["--out", "X", "--distill", "dcgan-tiny", "--student-init", "copy"], "unknown student initialisation 'copy'"),
    (["--out", "X", "--distill", "gpt-tiny", "--alpha", "2"], "lies in [0, 1]"),
    (["--out", "X", "--prune", "0.5", "--temperature", "3"], "no --distill PRESET was given"),
    (["--out", "X", "--prune", "0.5", "--structured", "--prune-layer", "generator.network.body.2"], "--prune-layer takes PATH=AMOUNT"),
    (["--out", "X", "--prune", "0.5", "--criterion", "bn"], "it needs --structured"),
    (["--out", "X", "--prune", "0.5", "--set", "optim.lr=1e-3"], "no --finetune steps"),
    ([], "needs a run and --out"),
])
def test_bad_options_are_one_clear_error(gan_run, tmp_path, args, message):
    # In process (a subprocess per case costs seconds); `aigc.cli.main.main` prints any AigcError as one line, exit 2.
    from typer.testing import CliRunner

    from aigc.cli.main import app

    result = CliRunner().invoke(app, ["optimize", *([str(gan_run)] if args else []), *[str(tmp_path / a) if a == "X" else a for a in args]])
    assert isinstance(result.exception, AigcError), result.output
    assert message in str(result.exception)
    assert not (tmp_path / "X").exists()
