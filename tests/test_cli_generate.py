"""`aigc generate`: through the one generation path, with --param for any request field, never overwriting
without --force, a random seed by default that it prints, text on stdout, and clear errors for bad outputs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from aigc.generation.outputs import read_png_text


def aigc(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aigc", *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_param_sets_any_request_field_and_unknown_ones_list_the_valid_fields(tmp_path):
    out = tmp_path / "t2i.png"
    result = aigc("generate", "t2i-diffusion-mnist", "-n", "2", "--seed", "1", "--prompt", "a seven", "--param", "sample_steps=3", "--param", "guidance=2.5", "--out", str(out))
    assert result.returncode == 0, result.stderr
    record = json.loads(read_png_text(out)["aigc"])
    assert record["sample_steps"] == 3 and record["guidance"] == 2.5 and record["seeds"] == [1, 2]
    bad = aigc("generate", "dcgan-mnist", "--param", "sample_steps=3", "--out", str(tmp_path / "x.png"))
    assert bad.returncode == 2 and "--param" in bad.stderr and "no field 'sample_steps'" in bad.stderr and "count, seed" in bad.stderr
    twice = aigc("generate", "dcgan-mnist", "--seed", "1", "--param", "seed=2", "--out", str(tmp_path / "y.png"))
    assert twice.returncode == 2 and "seed is given twice" in twice.stderr
    typed = aigc("generate", "dcgan-mnist", "--param", "count=many", "--out", str(tmp_path / "z.png"))
    assert typed.returncode == 2 and "request.count" in typed.stderr and "Traceback" not in typed.stderr
    assert not any(tmp_path.glob("[xyz].png"))


def test_existing_files_are_kept_unless_forced_and_where_files_went_is_said(tmp_path):
    first = aigc("generate", "dcgan-mnist", "-n", "2", "--seed", "4", cwd=tmp_path)
    target = tmp_path / "generated" / "dcgan-mnist" / "seed-4.png"
    assert first.returncode == 0 and target.exists() and f"wrote {os.path.join('generated', 'dcgan-mnist', 'seed-4.png')}" in first.stdout
    before = target.stat().st_mtime_ns
    again = aigc("generate", "dcgan-mnist", "-n", "2", "--seed", "4", cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr and "--force" in again.stderr
    assert target.stat().st_mtime_ns == before
    forced = aigc("generate", "dcgan-mnist", "-n", "2", "--seed", "4", "--force", cwd=tmp_path)
    assert forced.returncode == 0
    each = aigc("generate", "dcgan-mnist", "-n", "2", "--seed", "4", "--force", "--each", cwd=tmp_path)
    assert each.returncode == 0 and each.stdout.count("wrote ") == 3


@pytest.mark.parametrize("kind", ["folder", "under-a-file", "fifo"])
def test_outputs_that_cannot_be_written_are_refused_before_any_work(tmp_path, kind):
    if kind == "folder":
        out = tmp_path / "existing"
        out.mkdir()
        expected = "is a folder"
    elif kind == "under-a-file":
        (tmp_path / "file.txt").write_text("keep me")
        out = tmp_path / "file.txt" / "image.png"
        expected = "is a file"
    else:
        out = tmp_path / "pipe.png"
        os.mkfifo(out)
        expected = "not a regular file"
    result = aigc("generate", "dcgan-mnist", "-n", "1", "--seed", "0", "--out", str(out), "--force")
    assert result.returncode == 2 and expected in result.stderr and "Traceback" not in result.stderr
    if kind == "under-a-file":
        assert (tmp_path / "file.txt").read_text() == "keep me"


def test_the_default_seed_is_random_printed_and_recorded(tmp_path):
    seeds = []
    for name in ("a.png", "b.png"):
        result = aigc("generate", "dcgan-mnist", "-n", "1", "--out", str(tmp_path / name))
        assert result.returncode == 0, result.stderr
        printed = int(re.search(r"seed: (\d+) \(random; --seed \1 makes these again\)", result.stderr).group(1))
        assert read_png_text(tmp_path / name)["seed"] == str(printed)
        seeds.append(printed)
    assert seeds[0] != seeds[1]
    again = aigc("generate", "dcgan-mnist", "-n", "1", "--seed", str(seeds[0]), "--out", str(tmp_path / "c.png"))
    assert again.returncode == 0 and (tmp_path / "c.png").read_bytes() == (tmp_path / "a.png").read_bytes()


def test_text_is_printed_and_saved(tmp_path):
    from helpers import train_tiny

    run = train_tiny("gru", tmp_path / "gru").run_dir
    out = tmp_path / "story.txt"
    result = aigc("generate", str(run), "--prompt", "ab", "--max-tokens", "10", "--seed", "3", "--out", str(out))
    assert result.returncode == 0, result.stderr
    saved = out.read_text(encoding="utf-8").rstrip("\n")
    assert result.stdout.rstrip("\n") == saved and f"wrote {out}" in result.stderr and "wrote" not in result.stdout
    streamed = aigc("generate", str(run), "--prompt", "ab", "--max-tokens", "10", "--seed", "3", "--stream", "--out", str(tmp_path / "s.txt"))
    assert streamed.returncode == 0 and streamed.stdout.rstrip("\n") == saved
    beams = aigc("generate", str(run), "--prompt", "ab", "--beams", "2", "--stream", "--out", str(tmp_path / "b.txt"))
    assert beams.returncode == 2 and "--stream" in beams.stderr
