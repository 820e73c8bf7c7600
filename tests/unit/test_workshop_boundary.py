"""The running services never import the model workshop (it builds, trains, converts and evaluates models)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_PACKAGES = ("services", "shared", "clients")


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def _runtime_files() -> list[Path]:
    return sorted(p for package in RUNTIME_PACKAGES for p in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", _runtime_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_runtime_module_does_not_import_the_workshop(path: Path) -> None:
    offending = [name for name in _imports(path) if name == "model_workshop" or name.startswith("model_workshop.")]
    assert not offending, f"{path.relative_to(ROOT)} imports {offending}: runtime code must not depend on the workshop"


def test_the_workshop_holds_the_model_tooling() -> None:
    # GIVEN the tools that build and evaluate models WHEN looking where the services live THEN none is there
    for moved in ("tfjs_import.py", "quantize.py", "evaluate.py", "bench.py", "model_store.py", "training"):
        assert not (ROOT / "services" / "detector" / "local_engine" / moved).exists(), moved
    assert not (ROOT / "services" / "detector" / "labels").exists()
    assert (ROOT / "model_workshop" / "model_store.py").is_file()


def test_model_fetch_needs_no_torch() -> None:
    # GIVEN a machine with only requirements-dev.txt (torch is train-time only) WHEN `make models` builds the
    # grafted part detector THEN every module that path imports loads without torch
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import model_workshop.model_store, model_workshop.parts_detector.graft, model_workshop.quantize\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
