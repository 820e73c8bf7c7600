import sys

from services.detector.local_engine.training.cli import main

sys.exit(main())
