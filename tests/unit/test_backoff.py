"""The one backoff rule: doubling from the first delay, capped, spread by jitter."""

import pytest

from shared.backoff import backoff_delay


@pytest.mark.parametrize(
    ("attempt", "first_s", "max_s", "middle"),
    [(0, 0.5, 30.0, 0.5), (1, 0.5, 30.0, 1.0), (3, 1.0, 30.0, 8.0), (10, 1.0, 30.0, 30.0), (200, 0.1, 5.0, 5.0)],
)
def test_delays_double_up_to_the_cap_within_the_spread(
    attempt: int, first_s: float, max_s: float, middle: float
) -> None:
    delays = [backoff_delay(attempt, first_s=first_s, max_s=max_s, spread=0.2) for _ in range(200)]
    assert all(0.8 * middle <= d <= 1.2 * middle for d in delays)
    assert max(delays) - min(delays) > 0.05 * middle  # jittered, not one value


def test_without_a_cap_it_keeps_doubling() -> None:
    assert 0.5 * 64 <= backoff_delay(6, first_s=1.0) <= 1.5 * 64


def test_a_negative_attempt_is_refused() -> None:
    with pytest.raises(ValueError, match="attempt"):
        backoff_delay(-1, first_s=1.0)
