"""Fixtures for the local engine's model tests: the fetched model dir and a Node tfjs install."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from model_workshop.model_store import default_model_dir, require_models
from services.detector.local_engine.pipeline import LocalPipeline

TFJS_VERSION = "4.22.0"


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The model dir `make models` filled; fails (not skips) with the fetch command when it is empty."""
    directory = default_model_dir()
    require_models(directory)
    return directory


@pytest.fixture(scope="session")
def tfjs_node_modules() -> Path:
    """node_modules holding @tensorflow/tfjs (pure-JS CPU backend), installed once from the npm registry."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("Node.js 20 with npm is required for the TFJS reference check (apt-get install nodejs npm)")
    root = Path.home() / ".cache" / "ppe-platform" / "node"
    if not (root / "node_modules" / "@tensorflow" / "tfjs" / "package.json").is_file():
        root.mkdir(parents=True, exist_ok=True)
        if not (root / "package.json").is_file():
            (root / "package.json").write_text('{"name": "ppe-tfjs-reference", "private": true}\n')
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", f"@tensorflow/tfjs@{TFJS_VERSION}"],
            cwd=root,
            check=True,
            capture_output=True,
            text=True,
        )
    return root / "node_modules"


@pytest.fixture(scope="session")
def engine(model_dir: Path) -> LocalPipeline:
    """One engine for the session (loading takes about a second). PPE_WEIGHTS_DIR overrides the shipped weights."""
    weights = os.environ.get("PPE_WEIGHTS_DIR")
    return LocalPipeline(model_dir, weights_dir=Path(weights) if weights else None)
