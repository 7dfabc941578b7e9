"""`python -m aop.cli`: what the services' supervisor and the tests start."""

import sys

from aop.cli.entry import main

sys.exit(main())
