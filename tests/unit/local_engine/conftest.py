from pathlib import Path

import pytest

from model_workshop.training.train_all import WEIGHTS_DIR


@pytest.fixture(scope="session")
def weights_dir() -> Path:
    return WEIGHTS_DIR
