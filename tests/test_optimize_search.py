"""aigc search: Optuna trials that are ordinary runs of the one loop (validation metric reported to the
trial, the median rule able to stop one), a size constraint, a results table and the best config written
as a preset that trains; bad spaces are refused before any training."""

from __future__ import annotations

import json

import pytest

from aigc.config import load_config
from aigc.errors import AigcError
from conftest import has_module, require

FIXED = ["train.max_steps=6", "train.eval_every=2"]


@pytest.fixture(autouse=True)
def _optuna():
    require(has_module("optuna"), "pip install 'aigc[search]'")


def test_a_search_runs_its_trials_through_the_loop_and_writes_the_best_config_as_a_preset(tmp_path):
    from aigc.optimize.search import search

    results = search("gpt-tiny", tmp_path / "search", ["model.embedding_dim=8,16,32", "optim.lr=3e-3,1e-2"],
                     trials=3, metric="val/loss", max_parameters=10_000, overrides=FIXED)
    rows = results["trials"]
    assert len(rows) == 3 and {row["trial"] for row in rows} == {0, 1, 2}
    # gpt-tiny has embedding_dim 16 and lr 3e-3 (0.003): trial 0 is the preset as written
    assert results["preset_values"] == {"model.embedding_dim": "16", "optim.lr": "3e-3"} and rows[0]["values"] == results["preset_values"]
    for row in rows:
        assert row["values"]["model.embedding_dim"] in ("8", "16", "32")
        if row["parameters"] > 10_000:  # embedding_dim 32 (15,072): over the constraint, never trained
            assert row["state"].startswith("pruned untrained: ") and row["steps"] == 0 and "metric" not in row
        elif row["state"] == "complete":
            assert row["steps"] <= 6 and row["metric"] > 0 and (tmp_path / "search" / f"trial-{row['trial']:03d}").is_dir()
        else:  # the median rule, or TPE picking a finished combination again
            assert row["state"].startswith(("pruned at step", "repeat of trial")), row
    best = results["best"]
    assert best["metric"] == min(row["metric"] for row in rows if row["state"] == "complete")
    written = load_config(str(tmp_path / "search" / "best.toml"))
    assert written.model.embedding_dim == int(best["values"]["model.embedding_dim"]) and written.train.max_steps == 6
    assert json.loads((tmp_path / "search" / "search.json").read_text())["best"]["trial"] == best["trial"]
    assert "| trial | model.embedding_dim | optim.lr |" in (tmp_path / "search" / "search.md").read_text()


def test_the_median_rule_stops_a_trial_that_is_worse_than_the_others_at_the_same_step(tmp_path):
    from aigc.optimize.search import search

    # Six steps of the tiny GPT: lr 3e-2 first raises the loss (4.17 at step 2) where lr 1e-9 keeps it (4.11),
    # so once two trials finished, a trial at 3e-2 is stopped at step 2 and is not a candidate for the best.
    results = search("gpt-tiny", tmp_path / "s", ["optim.lr=3e-2,1e-9"], trials=6, overrides=FIXED, seed=1)
    pruned = [row for row in results["trials"] if row["state"].startswith("pruned at step 2")]
    complete = [row for row in results["trials"] if row["state"] == "complete"]
    assert pruned and complete and all(row["steps"] == 2 for row in pruned), results["trials"]
    assert min(row["metric"] for row in pruned) > max(row["metric"] for row in complete)
    assert results["best"]["trial"] in {row["trial"] for row in complete}


@pytest.mark.parametrize("space, message", [
    (["model.widht=8,16"], "unknown key"),
    (["model.embedding_dim="], "has no values"),
    (["model.embedding_dim=8,eight"], "model.embedding_dim"),
    (["embedding_dim"], "expected KEY=V1,V2"),
    ([], "at least one --space"),
])
def test_bad_spaces_are_refused_before_any_training(tmp_path, space, message):
    from aigc.optimize.search import search

    with pytest.raises(AigcError, match=message) as error:
        search("gpt-tiny", tmp_path / "s", space, trials=2, overrides=FIXED)
    assert error.value.field == "--space" and not (tmp_path / "s").exists()


def test_the_command_line_searches_and_a_metric_no_pass_reports_is_named(tmp_path):
    from typer.testing import CliRunner

    from aigc.cli.main import app

    result = CliRunner().invoke(app, ["search", "gpt-tiny", "--out", str(tmp_path / "cli"), "--trials", "2", "--space",
                                      "model.embedding_dim=8,16", *[a for s in FIXED for a in ("--set", s)]])
    assert result.exit_code == 0, result.output
    assert "Best: trial" in result.output and (tmp_path / "cli" / "best.toml").is_file()
    with pytest.raises(AigcError, match="reported no 'val/fid'.*val/loss"):
        from aigc.optimize.search import search

        search("gpt-tiny", tmp_path / "m", ["model.embedding_dim=8"], trials=1, metric="val/fid", overrides=FIXED)


def test_a_combination_picked_again_reuses_its_result_instead_of_training_again(tmp_path):
    from aigc.optimize.search import search

    results = search("gpt-tiny", tmp_path / "r", ["model.embedding_dim=16"], trials=3, overrides=FIXED)
    first, *repeats = results["trials"]
    assert first["state"] == "complete" and [r["state"] for r in repeats] == ["repeat of trial 0"] * 2
    assert all(r["metric"] == first["metric"] for r in repeats) and not (tmp_path / "r" / "trial-001").exists()
