"""`aigc search PRESET --trials N --budget-minutes M --space model.width=16,32,64 ...`: architecture and
hyperparameter search with Optuna, every trial an ordinary run of the one training loop.

    1. The space: KEY=V1,V2,... per `--space`, each value an override the config system validates (an unknown
       key or a bad value fails before any training, naming the key; an empty list of values too).
    2. Each trial: Optuna's TPE sampler picks one value per key (trial 0 takes the preset's own values when
       the space holds them, so the table shows the hand-tuned point beside what the search found); the size constraint is checked on the network
       the loop builds (generation weights, as `aigc optimize` counts them): one over it stops before step 1.
    3. The run trains through `training.loop.fit` with the default callbacks plus `ReportToTrial`, which hands
       each validation pass's metric to Optuna; the median rule (MedianPruner) stops a trial whose metric is
       worse than the median of earlier trials at the same step (the loop's own stop: its checkpoint is kept).
    4. The objective is the last validation value of the metric (lower is better); the study stops after
       N trials or M minutes, whichever comes first.
    5. OUT/search.json and OUT/search.md hold every trial (values, parameters, metric, state, seconds);
       OUT/best.toml is the preset with the best values merged in: `aigc train OUT/best.toml` trains it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from aigc.config import apply_overrides, load_config, read_preset_or_file
from aigc.errors import AigcError, ConfigError
from aigc.files import atomic_write_text
from aigc.training.callbacks import Callback, default_callbacks

RESULTS_JSON, RESULTS_MD, BEST = "search.json", "search.md", "best.toml"


@dataclass(frozen=True)
class Space:
    """One searched key and its candidate values (override strings, as `--set` takes them)."""

    key: str
    values: tuple[str, ...]


def _setting(raw: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        raw = raw.get(part) if isinstance(raw, dict) else None
    return raw


def preset_values(spaces: list[Space], preset: str, overrides: list[str]) -> dict[str, str] | None:
    """The space's values that equal the preset's own settings (compared after validation, so 3e-3 is
    0.003), one per key; None when the preset's setting of some key is not among the values."""
    own = load_config(preset, overrides).to_dict()
    chosen = {}
    for space in spaces:
        same = [v for v in space.values if _setting(load_config(preset, [*overrides, f"{space.key}={v}"]).to_dict(), space.key) == _setting(own, space.key)]
        if not same:
            return None
        chosen[space.key] = same[0]
    return chosen


def parse_space(items: list[str], preset: str, overrides: list[str]) -> list[Space]:
    """`--space KEY=V1,V2,...` items, each value checked by building the preset's config with it."""
    if not items:
        raise AigcError("aigc search needs at least one --space", field="--space", fix="e.g. --space model.width=16,32,64")
    spaces, seen = [], set()
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        values = tuple(v.strip() for v in text.split(",") if v.strip())
        if not sep or not key:
            raise AigcError(f"expected KEY=V1,V2,..., got {item!r}", field="--space", fix="e.g. --space model.width=16,32,64")
        if not values:
            raise AigcError(f"--space {key} has no values to try", field="--space", fix=f"list them: --space {key}=A,B,C")
        if key in seen:
            raise AigcError(f"--space {key} is given twice", field="--space", fix="list all its values in one --space")
        seen.add(key)
        for value in values:
            try:
                load_config(preset, [*overrides, f"{key}={value}"])
            except ConfigError as error:
                raise ConfigError(f"{key}={value}: {str(error).splitlines()[0]}", field="--space", fix=error.fix) from None
        spaces.append(Space(key, values))
    return spaces


class ReportToTrial(Callback):
    """Steps 2-3: the size constraint on the network the loop built (before its first step), then each
    validation pass's `metric` to the Optuna trial; the median rule may stop the run."""

    def __init__(self, trial: Any, metric: str, max_parameters: int | None = None):
        self.trial, self.metric, self.max_parameters = trial, metric, max_parameters
        self.parameters: int | None = None
        self.pruned_at: int | None = None
        self.last: float | None = None
        self.seen: set[str] = set()

    def on_fit_start(self, state) -> None:
        from aigc.optimize.report import parameter_counts

        self.parameters = parameter_counts(state.model)["parameters"]  # generation weights, as `aigc optimize` counts them
        if self.max_parameters is not None and self.parameters > self.max_parameters:
            state.request_stop(f"{self.parameters:,} parameters > {self.max_parameters:,}")

    def on_eval(self, state, metrics: dict[str, float]) -> None:
        self.seen |= set(metrics)
        if self.metric not in metrics:
            return
        self.last = float(metrics[self.metric])
        self.trial.report(self.last, state.step)
        if self.trial.should_prune():
            self.pruned_at = state.step
            state.request_stop(f"pruned by the median rule at step {state.step}")


def search(preset: str, out: str | Path, space: list[str], *, trials: int, budget_minutes: float | None = None,
           metric: str = "val/loss", max_parameters: int | None = None, overrides: list[str] | None = None,
           seed: int = 0, startup_trials: int = 2) -> dict[str, Any]:
    """Steps 1-5; returns the results (what OUT/search.json holds)."""
    import optuna

    from aigc.training.loop import fit

    overrides = list(overrides or [])
    if trials < 1:
        raise AigcError(f"--trials takes a number >= 1, got {trials}", field="--trials", fix="e.g. --trials 20")
    if budget_minutes is not None and budget_minutes <= 0:
        raise AigcError(f"--budget-minutes takes minutes > 0, got {budget_minutes}", field="--budget-minutes", fix="e.g. --budget-minutes 30")
    spaces = parse_space(space, preset, overrides)
    base = load_config(preset, overrides)
    if not base.train.eval_every or base.data.val_fraction == 0:
        raise AigcError(f"{preset} never evaluates on validation data, so trials have no {metric} to compare",
                        field="train.eval_every", fix="add --set train.eval_every=50 (and data.val_fraction > 0)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=startup_trials))
    rows: list[dict[str, Any]] = []
    baseline = preset_values(spaces, preset, overrides)
    if baseline is not None:  # trial 0 is the preset as written: the hand-tuned point the search is measured against
        study.enqueue_trial(baseline)

    def objective(trial: Any) -> float:
        chosen = {s.key: trial.suggest_categorical(s.key, list(s.values)) for s in spaces}
        trial_overrides = [*overrides, *(f"{k}={v}" for k, v in chosen.items())]
        config = load_config(preset, trial_overrides)
        row: dict[str, Any] = {"trial": trial.number, "values": chosen, "state": "running"}
        rows.append(row)
        earlier = next((r for r in rows[:-1] if r["values"] == chosen and r["state"] == "complete"), None)
        if earlier is not None:  # TPE may pick a finished combination again: a seeded run would repeat itself
            row.update(parameters=earlier["parameters"], metric=earlier["metric"], state=f"repeat of trial {earlier['trial']}")
            return earlier["metric"]
        run_dir = out / f"trial-{trial.number:03d}"
        reporter = ReportToTrial(trial, metric, max_parameters)
        started = time.perf_counter()
        result = fit(config, run_dir, callbacks=[*default_callbacks(config, run_dir), reporter])
        row.update(parameters=reporter.parameters, seconds=round(time.perf_counter() - started, 2), steps=result.step, run=str(run_dir))
        if result.step == 0:
            row["state"] = f"pruned untrained: {result.stop_reason}"
            raise optuna.TrialPruned()
        row["metric"] = reporter.last
        if reporter.last is None:
            raise AigcError(f"trial {trial.number} reported no {metric!r}; its validation passes gave {', '.join(sorted(reporter.seen)) or 'nothing'}",
                            field="--metric", fix="choose one of those (e.g. --metric val/loss)")
        if reporter.pruned_at is not None:
            row["state"] = f"pruned at step {reporter.pruned_at}"
            raise optuna.TrialPruned()
        row["state"] = "complete"
        return reporter.last

    study.optimize(objective, n_trials=trials, timeout=None if budget_minutes is None else budget_minutes * 60)
    complete = [row for row in rows if row["state"] == "complete"]  # (repeats point at one of these)
    if not complete:
        raise AigcError(f"no trial finished ({len(rows)} tried: {'; '.join(row['state'] for row in rows[:4])})", field="--trials",
                        fix="raise --trials or --budget-minutes, or loosen --max-parameters")
    best = min(complete, key=lambda row: row["metric"])
    best_overrides = [f"{k}={v}" for k, v in best["values"].items()]
    raw = apply_overrides(read_preset_or_file(preset), [*overrides, *best_overrides])
    raw["description"] = (f"aigc search {preset}: best of {len(rows)} trials, {metric} {best['metric']:.5g} at "
                          f"{best['parameters']:,} parameters ({', '.join(best_overrides)})")
    atomic_write_text(out / BEST, tomli_w.dumps(raw))
    results = {"format": "aigc-search", "preset": preset, "overrides": overrides, "metric": metric, "direction": "minimize",
               "max_parameters": max_parameters, "budget_minutes": budget_minutes, "sampler": f"TPE (seed {seed}, {startup_trials} random first)",
               "pruner": f"median rule after {startup_trials} trials", "space": {s.key: list(s.values) for s in spaces},
               "trials": rows, "best": {**best, "preset_file": str(out / BEST)}, "optuna": optuna.__version__,
               "preset_values": baseline}
    atomic_write_text(out / RESULTS_JSON, json.dumps(results, indent=2) + "\n")
    atomic_write_text(out / RESULTS_MD, markdown(results))
    return results


def markdown(results: dict[str, Any]) -> str:
    keys = list(results["space"])
    lines = [f"| trial | {' | '.join(keys)} | parameters | {results['metric']} | steps | seconds | state |",
             "|---" * (len(keys) + 6) + "|"]
    for row in results["trials"]:
        value = "-" if row.get("metric") is None else f"{row['metric']:.5g}"
        lines.append(f"| {row['trial']} | {' | '.join(str(row['values'][k]) for k in keys)} | {row.get('parameters', 0):,} | {value} "
                     f"| {row.get('steps', '-')} | {row.get('seconds', '-')} | {row['state']} |")
    best = results["best"]
    if results.get("preset_values") is not None:
        lines += ["", f"Trial 0 is the preset's own values ({', '.join(f'{k}={v}' for k, v in results['preset_values'].items())})."]
    lines += ["", f"Best: trial {best['trial']} ({', '.join(f'{k}={v}' for k, v in best['values'].items())}), "
              f"{results['metric']} {best['metric']:.5g}; preset written to {best['preset_file']}."]
    return "\n".join(lines) + "\n"
