"""Causes of unlocated labelled heads in the evaluation's breakdown (evaluate.head_miss_cause)."""

from __future__ import annotations

import numpy as np
import pytest

from model_workshop.eval_data import Labelled
from model_workshop.lenient_eval import (
    MISS_CAP,
    MISS_ELSEWHERE,
    MISS_NO_PERSON,
    MISS_SHARED,
    head_miss_cause,
)

HEAD = Labelled("helmet", np.array([110.0, 100.0, 130.0, 120.0]))  # centre (120, 110)
HOLDER = np.array([100.0, 90.0, 160.0, 300.0])
ELSEWHERE = np.array([400.0, 90.0, 460.0, 300.0])


@pytest.mark.parametrize(
    ("case", "boxes", "owner", "expected"),
    [
        ("no box at all", [], {}, MISS_NO_PERSON),
        ("boxes elsewhere, few persons", [ELSEWHERE], {}, MISS_NO_PERSON),
        ("boxes elsewhere, the 15-person cap is full", [ELSEWHERE] * 15, {}, MISS_CAP),
        ("holder's HEAD matched another label", [HOLDER, ELSEWHERE], {0: 3}, MISS_SHARED),
        ("holder's HEAD free but elsewhere", [HOLDER, ELSEWHERE], {1: 0}, MISS_ELSEWHERE),
        ("two holders, one free", [HOLDER, HOLDER + 1.0], {0: 2}, MISS_ELSEWHERE),
    ],
)
def test_head_miss_cause(case: str, boxes: list[np.ndarray], owner: dict[int, int], expected: str) -> None:
    assert head_miss_cause(HEAD, boxes, owner, max_persons=15) == expected
