"""`aigc search PRESET --trials N --budget-minutes M --space model.width=16,32,64 ...` (aigc.optimize.search).

    aigc search gpt-shakespeare --out runs/search --trials 12 --budget-minutes 60 \\
        --space model.embedding_dim=64,128,192 --space model.num_layers=2,4 --space optim.lr=1e-3,3e-3 \\
        --metric val/loss --max-parameters 1000000 --set train.max_steps=300
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

console = Console()


def search_command(
    preset: str = typer.Argument(..., help="A preset name (`aigc models list`) or a TOML config file."),
    out: Path = typer.Option(..., "--out", help="Folder for the trials' runs, search.json/.md and best.toml."),
    space: list[str] = typer.Option([], "--space", help="KEY=V1,V2,...: a setting and the values to try (repeatable)."),
    trials: int = typer.Option(10, "--trials", help="Trials at most (each one a training run)."),
    budget_minutes: Optional[float] = typer.Option(None, "--budget-minutes", help="Stop starting trials after this many minutes."),
    metric: str = typer.Option("val/loss", "--metric", help="The validation metric to minimise (reported by the loop's validation passes)."),
    max_parameters: Optional[int] = typer.Option(None, "--max-parameters", help="Size constraint: configs with more generation weights are pruned untrained."),
    set_: list[str] = typer.Option([], "--set", help="Fixed overrides for every trial, e.g. --set train.max_steps=300 (repeatable)."),
    seed: int = typer.Option(0, "--seed", help="The TPE sampler's seed."),
) -> None:
    """Search architecture and hyperparameters with Optuna (TPE + median pruning); writes the best config as a preset."""
    from aigc.optimize.search import markdown, search

    results = search(preset, out, space, trials=trials, budget_minutes=budget_minutes, metric=metric,
                     max_parameters=max_parameters, overrides=set_, seed=seed)
    console.print(markdown(results), highlight=False, soft_wrap=True)
