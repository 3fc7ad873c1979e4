"""``jaxseq eval``: see :mod:`jaxseq.models.cli`; on a language-model run
directory, :mod:`jaxseq.lm.cli`."""

import sys
from collections.abc import Sequence

from .cli import eval_main


def main(argv: Sequence[str] | None = None) -> int:
    """``jaxseq eval MODEL_DIR ...`` (a classifier) or ``jaxseq eval RUN_DIR``
    (a language model run: perplexity)."""
    from ..lm.cli import is_lm_run

    argv = list(sys.argv[1:] if argv is None else argv)
    if is_lm_run(argv):
        from ..lm.cli import eval_main as lm_eval_main

        return lm_eval_main(argv)
    return eval_main(argv)


__all__ = ["main"]

if __name__ == "__main__":  # guarded: pytest --doctest-modules imports this module
    sys.exit(main())
