"""`python -m devstack run`: the whole platform on this machine (see devstack/stack.py)."""

from devstack.stack import main

raise SystemExit(main())
