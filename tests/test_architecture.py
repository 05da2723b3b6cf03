"""The layer map of ARCHITECTURE.md, enforced: no module imports from a later layer."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "medknn"

LAYERS = {
    "errors": 0,
    "io": 0,
    "data": 1,
    "models": 2,
    "losses": 3,
    "miners": 3,
    "methods": 4,
    "training": 5,
    "prediction": 6,
    "evaluation": 7,
    "reports": 8,
    "api": 9,
    "run_training": 9,
    "run_ensemble": 9,
    "lazy": 0,
    "run_report": 9,
    "benchmark": 9,
    "features": 9,
    "serve": 9,
    "tuning": 9,
    "cli": 10,
    "__main__": 10,
    "__init__": 10,  # the package's front door re-exports the API
}


def _layer_of(module: str) -> int:
    top = module.split(".")[1] if module.startswith("medknn.") else module
    return LAYERS[top]


def _medknn_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("medknn"):
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names if a.name.startswith("medknn")]
    return [n for n in names if n != "medknn"]


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_top_level_module_has_a_layer() -> None:
    tops = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in MODULES}
    assert tops <= set(LAYERS), f"add {tops - set(LAYERS)} to ARCHITECTURE.md and LAYERS"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_flow_one_way(path: Path) -> None:
    own = _layer_of(path.relative_to(PACKAGE).parts[0].removesuffix(".py"))
    for imported in _medknn_imports(path):
        assert _layer_of(imported) <= own, f"{path.name} (layer {own}) imports {imported}"
