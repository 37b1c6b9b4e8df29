"""The ``t2quant`` command line: the BIDS-Apps levels, the stage commands and the demo.

Nothing in the package imports :mod:`t2quant.cli`; it imports the stages it runs.
"""

from t2quant.cli.main import main

__all__ = ["main"]
