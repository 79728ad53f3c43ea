"""Shared test helpers.

`require(...)` skips a test whose optional dependency (a package, a Debian dataset) is missing, saying what
to install; with AIGC_STRICT=1 (set by .ci/run) the same check fails instead, so CI proves everything.
"""

from __future__ import annotations

import importlib.util
import os

import pytest


def require(available: bool, what: str) -> None:
    if available:
        return
    if os.environ.get("AIGC_STRICT") == "1":
        pytest.fail(f"AIGC_STRICT=1 and a required dependency is missing: {what}")
    pytest.skip(f"missing optional dependency: {what}")


def has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None
