"""`aigc models list` fits an 80-column terminal with one row per entry; `aigc models show NAME` says everything."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def aigc(*args: str, columns: int = 80) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": str(columns)}
    return subprocess.run([sys.executable, "-m", "aigc", *args], capture_output=True, text=True, timeout=120, env=env)


def test_models_list_fits_80_columns_one_row_each_and_never_cuts_a_name():
    result = aigc("models", "list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    listed = json.loads(aigc("models", "list", "--json").stdout)
    first_words = [line.split(" ", 1)[0] for line in lines]
    for section in ("families", "presets", "zoo"):
        for entry in listed[section]:
            assert first_words.count(entry["name"]) >= 1, entry["name"]  # a whole name starts one line
    assert len(lines) <= len(listed["families"]) + len(listed["presets"]) + len(listed["zoo"]) + 12  # no wrapped rows


def test_models_show_prints_a_zoo_entry_a_preset_and_a_family_in_full():
    shown = aigc("models", "show", "dcgan-mnist")
    assert shown.returncode == 0, shown.stderr
    listed = {entry["name"]: entry for entry in json.loads(aigc("models", "list", "--json").stdout)["zoo"]}
    assert listed["dcgan-mnist"]["description"] in " ".join(shown.stdout.split()) and "aigc train dcgan-mnist" in shown.stdout
    family = aigc("models", "show", "gpt")
    assert family.returncode == 0 and "gpt-shakespeare" in family.stdout and "text" in family.stdout
    missing = aigc("models", "show", "no-such-thing")
    assert missing.returncode == 2 and "aigc models list" in missing.stderr and "Traceback" not in missing.stderr
