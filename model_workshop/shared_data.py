"""Where the training / evaluation data lives: the one lookup the workshop, the benchmarks and the tests share.

$PPE_SHARED_DATA when it is set, else ../shared/data beside the repository (where CI lays it). Nothing else
is searched: a clone without either has no data, and says so.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "PPE_SHARED_DATA"
BESIDE_REPO = Path(__file__).resolve().parents[1].parent / "shared" / "data"


class SharedDataMissing(FileNotFoundError):
    """The shared data folder is not there; the message names the folder looked at and how to provide it."""


def shared_data_dir() -> Path:
    """The data folder (holding scenes/, helmet_vest/, masks/, gloves/, manifest.csv); SharedDataMissing if absent."""
    configured = os.environ.get(ENV_VAR)
    folder = Path(configured) if configured else BESIDE_REPO
    if folder.is_dir():
        return folder
    where = f"{ENV_VAR}={configured}" if configured else f"{BESIDE_REPO} (and {ENV_VAR} is not set)"
    raise SharedDataMissing(
        f"the shared data folder is missing: looked at {where}; "
        f"lay the data folder at ../shared/data beside the repository or set {ENV_VAR} to it"
    )
