import sys

from motive_core.cli import main

sys.exit(main())
