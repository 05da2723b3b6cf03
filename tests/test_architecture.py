"""The layer map of ARCHITECTURE.md, enforced: no module imports from a later layer."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
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
    "runs": 5,
    "training": 6,
    "prediction": 7,
    "evaluation": 8,
    "reports": 9,
    "api": 10,
    "run_training": 10,
    "run_ensemble": 10,
    "run_scoring": 10,
    "lazy": 0,
    "run_report": 10,
    "benchmark": 10,
    "features": 10,
    "serve": 10,
    "tuning": 10,
    "cli": 11,
    "__main__": 11,
    "__init__": 11,  # the package's front door re-exports the API
}


# Siblings in the layer order that must stay apart: inference loads a run through `runs`, never
# through the trainer, so predicting, scoring, reporting and serving a run do not import it.
INDEPENDENT_OF_TRAINING = ("prediction", "evaluation", "reports", "serve", "run_report")


def _top(module: str) -> str:
    return module.split(".")[1] if module.startswith("medknn.") else module


def _layer_of(module: str) -> int:
    return LAYERS[_top(module)]


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


INFERENCE_MODULES = [
    p
    for p in MODULES
    if p.relative_to(PACKAGE).parts[0].removesuffix(".py") in INDEPENDENT_OF_TRAINING
]


@pytest.mark.parametrize("path", INFERENCE_MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_inference_does_not_import_training(path: Path) -> None:
    for imported in _medknn_imports(path):
        assert _top(imported) != "training", f"{path.name} imports {imported}; use medknn.runs"


def test_loading_inference_leaves_the_trainer_out() -> None:
    """In a fresh interpreter, importing the inference side (and the API, whose `train` is
    imported on first use) loads no module of `training/`."""
    packages = ("medknn.prediction", "medknn.evaluation", "medknn.serve", "medknn.api")
    code = (
        f"import sys, {', '.join(packages)}; "
        "print(sorted(m for m in sys.modules if m.startswith('medknn.training')))"
    )
    path = os.pathsep.join(filter(None, [str(PACKAGE.parent), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "OMP_WAIT_POLICY": "PASSIVE"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert result.stdout.strip() == "[]", f"importing {packages} loaded {result.stdout.strip()}"
