"""Type aliases used across jaxseq (documentation only).

Shape conventions in docstrings: ``B`` batch, ``T`` time, ``F`` input features,
``H`` hidden units, ``G`` fused gate width (``4H`` LSTM, ``3H`` GRU, ``H`` Elman).
"""

from typing import TypeAlias

from jaxtyping import PRNGKeyArray

Key: TypeAlias = PRNGKeyArray

__all__ = ["Key"]
