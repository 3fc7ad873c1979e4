"""``jaxseq train``: see :mod:`jaxseq.models.cli`."""

import sys

from .cli import train_main as main

__all__ = ["main"]

if __name__ == "__main__":  # guarded: pytest --doctest-modules imports this module
    sys.exit(main())
