import sys

from robustlens.cli import main

sys.exit(main())
