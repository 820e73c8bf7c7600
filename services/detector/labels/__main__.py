import sys

from services.detector.labels.cli import main

sys.exit(main())
