"""The model workshop: everything that builds, converts, trains, quantizes or evaluates models.

It writes the files the detector loads (ONNX models in the model dir, crop-classifier weights and cards in
services/detector/local_engine/weights/). The running services never import this package
(tests/unit/test_workshop_boundary.py checks it).
"""
