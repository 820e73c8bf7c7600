"""Crop-classifier training (torch, CPU; train-time only: see requirements-train.txt).

Library use (what `labels train` calls):

    from model_workshop.training import TrainConfig, train_crop_classifier, yolo_samples
    classes = ["no_wear", "wear"]
    samples = yolo_samples(Path("data/helmet_vest"), {"no_wear": "no_wear", "wear": "wear"}, classes)
    result = train_crop_classifier(samples, classes, Path("out"), "vest", positive_class="wear")
    print(result.metrics["held_back_clean"])

CLI: `python -m model_workshop.training --help`.
"""

from model_workshop.training.crops import runtime_probs
from model_workshop.training.data import (
    CropSample,
    DatasetError,
    Split,
    folder_samples,
    make_split,
    yolo_samples,
)
from model_workshop.training.fit import TrainConfig
from model_workshop.training.model import Augment
from model_workshop.training.trainer import TrainResult, train_crop_classifier

__all__ = [
    "Augment",
    "CropSample",
    "DatasetError",
    "Split",
    "TrainConfig",
    "TrainResult",
    "folder_samples",
    "make_split",
    "runtime_probs",
    "train_crop_classifier",
    "yolo_samples",
]
