from pathlib import Path

import pytest

from model_workshop.training.train_all import WEIGHTS_DIR, shared_data_root


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (CI: beside the clone) or $PPE_SHARED_DATA; these tests need the real images."""
    return shared_data_root()


@pytest.fixture(scope="session")
def weights_dir() -> Path:
    return WEIGHTS_DIR
