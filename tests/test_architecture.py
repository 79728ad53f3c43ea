"""The layering is written down (import-linter contracts in pyproject.toml) and checked here.

Three checks: the contracts hold; loading a model to generate with imports nothing of training, metrics
or the studio; and no aigc module imports another at import time in a loop.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "aigc"

# Modules that only make sense inside another program: `python -m aigc` runs the CLI, and alembic runs
# the migration scripts with its own context.
RUN_BY_OTHERS = ("aigc.__main__", "aigc.studio.db.migrations.env", "aigc.studio.db.migrations.versions.")


def run_python(code: str) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter (nothing imported yet), from the repository root."""
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)


def all_modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if not name.startswith(RUN_BY_OTHERS):
            names.append(name)
    return names


def test_the_import_linter_contracts_hold():
    binary = Path(sys.executable).parent / "lint-imports"
    if not binary.exists():
        pytest.skip("import-linter is not installed: pip install -e '.[test]' (or pip install import-linter)")
    result = subprocess.run([str(binary), "--no-cache", "--no-logo"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


LAYERS_ABOVE_LOADING = ("aigc.training", "aigc.metrics", "aigc.studio", "aigc.api", "aigc.cli")


def above_loading(modules: list[str]) -> list[str]:
    return [name for name in modules if name.startswith(LAYERS_ABOVE_LOADING)]


def test_importing_aigc_loading_imports_no_training_metrics_or_studio():
    result = run_python("import json, sys; import aigc.loading; print(json.dumps(sorted(sys.modules)))")
    assert result.returncode == 0, result.stderr
    modules = json.loads(result.stdout)
    assert "aigc.loading" in modules
    assert above_loading(modules) == []


def test_loading_a_zoo_model_and_generating_imports_no_training_metrics_or_studio():
    # The whole generation path, not only the import: resolving the zoo name, reading the checkpoint,
    # building the family and generating through the pipeline.
    result = run_python(
        "import json, sys\n"
        "import aigc\n"
        "model = aigc.load('dcgan-mnist')\n"
        "batch = model.generate(aigc.ImageRequest(count=2, seed=0))\n"
        "assert batch.images.shape[0] == 2\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    assert result.returncode == 0, result.stderr
    modules = json.loads(result.stdout.splitlines()[-1])
    assert "aigc.models.image.gan" in modules and "aigc.generation.pipeline" in modules
    assert above_loading(modules) == []


# ------------------------------------------------------------------------------------- import-time cycles


def _module_of(name: str, known: set[str]) -> str | None:
    """The aigc module an import of `name` executes (a name inside a module means that module)."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def _import_time_imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The aigc modules `module` imports while it is being imported: statements at module level and in class
    bodies, not inside functions (lazy imports) or under `if TYPE_CHECKING:` (never executed)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                visit(node.orelse)
                continue
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
                targets = [f"{base}.{alias.name}" for alias in node.names]
            else:
                for field in ("body", "orelse", "finalbody", "handlers"):
                    inner = getattr(node, field, None)
                    if isinstance(inner, list):
                        visit([child for child in inner if isinstance(child, (ast.stmt, ast.ExceptHandler))])
                if isinstance(node, ast.ExceptHandler):
                    visit(node.body)
                continue
            for target in targets:
                imported = _module_of(target, known)
                if imported is not None and imported != module:
                    found.add(imported)

    visit(ast.parse(path.read_text(encoding="utf-8")).body)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return components


def _import_time_graph() -> dict[str, set[str]]:
    paths = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        paths[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    known = set(paths)
    return {module: _import_time_imports(module, path, known) for module, path in paths.items()}


def test_the_cycle_finder_finds_a_loop_and_reads_only_import_time_statements(tmp_path):
    # The finder itself: a package whose __init__ and a submodule import each other is a loop; an
    # import inside a function or under TYPE_CHECKING is not.
    (tmp_path / "__init__.py").write_text("from pkg.loader import thing\n")
    (tmp_path / "loader.py").write_text("from pkg import helper\nthing = 1\n")
    (tmp_path / "helper.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.loader\ndef later():\n    import pkg.loader\n"
    )
    known = {"pkg", "pkg.loader", "pkg.helper"}
    graph = {
        "pkg": _import_time_imports("pkg", tmp_path / "__init__.py", known),
        "pkg.loader": _import_time_imports("pkg.loader", tmp_path / "loader.py", known),
        "pkg.helper": _import_time_imports("pkg.helper", tmp_path / "helper.py", known),
    }
    assert graph == {"pkg": {"pkg.loader"}, "pkg.loader": {"pkg.helper"}, "pkg.helper": set()}
    assert _cycles(graph) == []
    (tmp_path / "loader.py").write_text("from pkg import thing_from_init\n")  # a name defined in pkg/__init__
    graph["pkg.loader"] = _import_time_imports("pkg.loader", tmp_path / "loader.py", known)
    assert _cycles(graph) == [["pkg", "pkg.loader"]]


def test_no_aigc_module_imports_another_at_import_time_in_a_loop():
    cycles = _cycles(_import_time_graph())
    assert cycles == [], f"import-time loops: {cycles}"


@pytest.mark.parametrize("order", ["sorted", "reversed"])
def test_every_module_imports_first_in_a_fresh_interpreter(order):
    # Each module is imported in a fresh interpreter after all those before it in this order, so a
    # module that only imports when something else was imported first fails here.
    modules = all_modules() if order == "sorted" else all_modules()[::-1]
    code = (
        "import importlib\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print('ok')\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-3000:]
