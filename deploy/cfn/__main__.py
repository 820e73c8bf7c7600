import sys

from deploy.cfn.render import main

raise SystemExit(main(sys.argv[1:]))
