"""Local PPE engine benchmark: latency p50/p95 on 1280x720 scenes, images/s over 2 processes, peak RSS.

    python benchmarks/local_engine.py [--rounds 5 --threads 1 --processes 2]

Same as `python -m model_workshop.bench`; figures and machine in docs/local-engine.md.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model_workshop.bench import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
