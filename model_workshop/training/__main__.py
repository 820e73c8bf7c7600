import sys

from model_workshop.training.cli import main

sys.exit(main())
