"""The one backoff-with-jitter rule every retry loop uses (SQS publish and receive, the outage breaker,
Rekognition throttling, notification channels, the camera agent's reconnects and uploads).

Exponential: `first_s`, doubled per attempt, capped at `max_s`, then spread by a random factor so that
workers failing together do not retry together.
"""

import math
import random


def backoff_delay(attempt: int, *, first_s: float, max_s: float = math.inf, spread: float = 0.5) -> float:
    """Seconds to wait before retry `attempt` (0 = the first retry): `min(first_s * 2**attempt, max_s)` times
    a factor drawn from [1 - spread, 1 + spread)."""
    if attempt < 0:
        raise ValueError(f"attempt must be 0 or more, got {attempt}")
    delay = first_s * 2 ** min(attempt, 64) if first_s > 0 else 0.0
    return min(delay, max_s) * random.uniform(1 - spread, 1 + spread)
