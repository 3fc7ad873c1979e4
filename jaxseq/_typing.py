"""Shape-annotated type aliases used across jaxseq (jaxtyping; documentation only).

Conventions: ``B`` batch, ``T`` time, ``F`` input features, ``H`` hidden units,
``G`` fused gate width (``4H`` LSTM, ``3H`` GRU, ``H`` Elman).
"""

from typing import Any, TypeAlias

from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray

PyTree: TypeAlias = Any
Params: TypeAlias = Any
Carry: TypeAlias = Any
Key: TypeAlias = PRNGKeyArray

Seq: TypeAlias = Float[Array, "T F"]
BatchSeq: TypeAlias = Float[Array, "B T F"]
Length: TypeAlias = Int[ArrayLike, ""]
Lengths: TypeAlias = Int[ArrayLike, " B"]

__all__ = [
    "Array",
    "ArrayLike",
    "BatchSeq",
    "Carry",
    "Float",
    "Int",
    "Key",
    "Length",
    "Lengths",
    "Params",
    "PyTree",
    "Seq",
]
