"""The built model files the engine loads: where they live, what the lock pins, and a clear error when absent.

This is all the running detector needs of the model store. Fetching, converting and quantizing are the
workshop's job (`python -m model_workshop.model_store fetch`); the services never import it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.config import ModelDirSettings

LOCK_PATH = Path(__file__).with_name("models.lock.json")
WEIGHTS_DIR = Path(__file__).with_name("weights")
FETCH_COMMAND = "python -m model_workshop.model_store fetch"


class ModelStoreError(RuntimeError):
    """A model file could not be fetched, built or verified."""


class ModelsMissingError(ModelStoreError):
    """A model file the engine needs is not in the model dir (or does not match the lock)."""

    def __init__(self, model: str, path: Path, reason: str = "missing") -> None:
        self.model = model
        self.path = path
        super().__init__(
            f"model {model!r} is {reason}: {path}. Run `{FETCH_COMMAND}` "
            f"(model dir: $PPE_MODEL_DIR, default ~/.cache/ppe-platform/models)."
        )


def default_model_dir() -> Path:
    """$PPE_MODEL_DIR, else ~/.cache/ppe-platform/models (shared.config.ModelDirSettings)."""
    return ModelDirSettings().model_dir


@dataclass(frozen=True)
class ModelSpec:
    name: str
    package: str
    format: str
    sources: dict[str, str]
    options: dict[str, Any]
    file: str
    sha256: str | None


def load_lock(path: Path = LOCK_PATH) -> tuple[dict[str, dict[str, Any]], dict[str, ModelSpec]]:
    lock = json.loads(path.read_text())
    models = {name: ModelSpec(name=name, **spec) for name, spec in lock["models"].items()}
    return lock["packages"], models


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def require_models(model_dir: Path | None = None, names: list[str] | None = None) -> dict[str, Path]:
    """Paths of the built model files; raises ModelsMissingError naming the first missing one.

    Only existence is checked here (fast, every engine start); `model_workshop.model_store verify` checks hashes.
    """
    model_dir = model_dir or default_model_dir()
    _, models = load_lock()
    paths: dict[str, Path] = {}
    for name in names or list(models):
        path = model_dir / models[name].file
        if not path.is_file():
            raise ModelsMissingError(name, path)
        paths[name] = path
    return paths
