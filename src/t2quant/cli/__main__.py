"""``python -m t2quant.cli``."""

import sys

from t2quant.cli.main import main

sys.exit(main())
