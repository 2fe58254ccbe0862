import sys

from zsmed.cli.main import main

sys.exit(main())
