import sys

from model_workshop.labels.cli import main

sys.exit(main())
