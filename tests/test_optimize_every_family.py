"""Generated from the registry: every family's tiny run is quantised (dynamic and static), channel-pruned and exported to
ONNX (with its parity check), and each result either
loads and generates like any run or is refused with an AigcError that names the option and says why."""

from __future__ import annotations

import warnings

import pytest

import aigc
from aigc.errors import AigcError
from aigc.optimize.pipeline import Plan, optimize
from aigc.optimize.report import Settings, timing_request
from aigc.registry import list_models
from helpers import train_tiny

GENERATIVE = [spec.name for spec in list_models() if spec.modality != "classifier"]
PLANS = {"int8": Plan(quantize="dynamic"), "static": Plan(quantize="static", calibrate=1), "channels": Plan(prune=0.5, structured=True),
         "onnx": Plan(export="onnx")}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root, trained = tmp_path_factory.mktemp("families"), {}

    def run(family):  # one tiny run per family, shared by its plans
        if family not in trained:
            trained[family] = train_tiny(family, root / family, "train.max_steps=1").run_dir
        return trained[family]

    return run


@pytest.mark.slow
@pytest.mark.parametrize("plan", sorted(PLANS))
@pytest.mark.parametrize("family", GENERATIVE)
def test_every_family_is_optimised_or_refused_clearly(family, plan, runs, tmp_path):
    run = runs(family)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # layers that stay float32 are named in a warning
            result = optimize(run, tmp_path / "small", PLANS[plan], measure=False)
    except AigcError as error:
        assert error.field in ("--quantize", "--structured", "--export") and str(error), error
        return
    loaded = aigc.load(tmp_path / "small")
    assert [t["name"] for t in loaded.info.sidecar["transforms"]] == [t["name"] for t in result.transforms]
    request = timing_request(loaded, Settings(images=2, tokens=4))
    if request is not None:  # style networks take an image, not a request the family can preview
        assert loaded.generate(request) is not None
