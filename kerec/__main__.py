import sys

from kerec.cli import main

sys.exit(main())
