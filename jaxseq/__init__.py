"""jaxseq: sequence models in JAX.

Pure-function Elman, LSTM and GRU cells (:mod:`jaxseq.cells`), run over time with
``jax.lax.scan`` (:func:`rnn`, :func:`unroll`, :func:`bidirectional`) and stacked
into layers (:mod:`jaxseq.layers`).
"""

from . import cells, layers, nn
from ._runner import bidirectional, lengths_from_mask, merge_outputs, rnn, unroll
from .cells import Cell
from .layers import BiCarry, BiParams, RNNLayer, stack

__version__ = "0.1.0.dev0"

#: Subpackages imported on first attribute access (PEP 562), so that
#: ``import jaxseq`` stays light and optional extras load only when used.
_LAZY = (
    "bayes",
    "data",
    "diagnostics",
    "interop",
    "io",
    "linen",
    "models",
    "nnx",
    "tasks",
    "text",
    "train",
)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'jaxseq' has no attribute {name!r}")


__all__ = [
    "BiCarry",
    "BiParams",
    "Cell",
    "RNNLayer",
    "bidirectional",
    "cells",
    "layers",
    "lengths_from_mask",
    "merge_outputs",
    "nn",
    "rnn",
    "stack",
    "unroll",
]
