r"""The spectrum of the recurrent matrix, and the step Jacobians along a trajectory.

The seed's diagnosis of Elman's model: back-propagation multiplies by ``W`` once
per step, and with ``W = V \operatorname{diag}(\lambda) V^{-1}``,
``W^t = V \operatorname{diag}(\lambda)^t V^{-1}``, so the largest ``|\lambda|`` (the
spectral radius ``\rho``) decides between explosion (``\rho > 1``) and vanishing
(``\rho < 1``). The largest singular value ``\sigma_1 \ge \rho`` bounds the growth
of a single step.

Matrices are returned in the seed's orientation (``a_t = W h_{t-1}``), i.e. the
transpose of jaxseq's ``w_h`` blocks (jaxseq multiplies row vectors on the
right). Eigenvalues and singular values do not depend on the orientation.

Eigen-decompositions run on the host (NumPy), as an analysis step outside
``jit``; :func:`step_jacobians` and :func:`step_jacobian_norms` are JAX functions.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._checks import check_rank
from ..cells import GRU_GATE_ORDER, LSTM_GATE_ORDER, Cell
from ..layers import RNNLayer
from ._state import (
    Ord,
    Wrt,
    as_cell,
    batched,
    block_index,
    check_choice,
    flat_step,
    matrix_norm,
    state_layout,
    trajectory,
)

_GATES = {"elman": "W", "lstm": LSTM_GATE_ORDER, "gru": GRU_GATE_ORDER}


class Spectrum(NamedTuple):
    """Spectral summary of one square matrix (NumPy, float64 / complex128).

    Attributes:
        eigenvalues: ``[H]`` complex, sorted by decreasing modulus.
        spectral_radius: ``max |eigenvalue|``.
        singular_values: ``[H]`` decreasing; ``singular_values[0]`` is the
            spectral norm.
    """

    eigenvalues: np.ndarray
    spectral_radius: float
    singular_values: np.ndarray


def spectrum(matrix: Float[ArrayLike, "H H"]) -> Spectrum:
    """Eigenvalues, spectral radius and singular values of a square matrix.

    Args:
        matrix: ``[H, H]``.

    Returns:
        A :class:`Spectrum`.

    Raises:
        ValueError: if ``matrix`` is not square.

    Examples:
        >>> import numpy as np
        >>> from jaxseq.diagnostics import spectrum
        >>> s = spectrum(np.array([[0.0, -2.0], [0.5, 0.0]]))   # eigenvalues +-i
        >>> round(s.spectral_radius, 6), s.singular_values.tolist()
        (1.0, [2.0, 0.5])
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"matrix: expected a square [H, H] matrix, got {m.shape}.")
    eig = np.linalg.eigvals(m)
    eig = eig[np.argsort(-np.abs(eig), kind="stable")]
    radius = float(np.abs(eig[0])) if eig.size else 0.0
    return Spectrum(eig, radius, np.linalg.svd(m, compute_uv=False))


def _cell_matrices(cell: Cell, params: Any, prefix: str) -> dict[str, np.ndarray]:
    if cell.name not in _GATES:
        raise ValueError(
            f"model: expected an elman, lstm or gru cell (known recurrent matrices), "
            f"got a cell named {cell.name!r}."
        )
    w_h = np.asarray(jnp.asarray(params.w_h, jnp.float32), dtype=np.float64)
    hidden = cell.hidden_size
    return {
        prefix + gate: w_h[:, i * hidden : (i + 1) * hidden].T
        for i, gate in enumerate(_GATES[cell.name])
    }


def recurrent_matrices(
    model: Cell | RNNLayer, params: Any
) -> dict[str, Float[np.ndarray, "H H"]]:
    """The recurrent weight blocks in the seed's orientation (``W = w_h^T``).

    Args:
        model: an ``elman``, ``lstm`` or ``gru`` cell, or a layer of them.
        params: its parameters.

    Returns:
        ``{name: [H, H]}``: ``{"W"}`` for Elman; one block per gate for gated
        cells, named by the gate order (``"i", "f", "g", "o"`` for LSTM,
        ``"r", "z", "n"`` for GRU). A layer prefixes ``"layer{i}/"`` (and
        ``"fw/"``, ``"bw/"`` when bidirectional).

    Examples:
        >>> import jax
        >>> import jaxseq
        >>> from jaxseq.diagnostics import recurrent_matrices
        >>> cell = jaxseq.cells.gru(3)
        >>> sorted(recurrent_matrices(cell, cell.init(jax.random.key(0), 2)))
        ['n', 'r', 'z']
    """
    if isinstance(model, Cell):
        return _cell_matrices(model, params, "")
    if not isinstance(model, RNNLayer):
        raise TypeError(
            f"model: expected a jaxseq Cell or RNNLayer, got {type(model).__name__}."
        )
    out: dict[str, np.ndarray] = {}
    for i, (cell, p) in enumerate(zip(model.cells, params, strict=True)):
        if model.bidirectional:
            out |= _cell_matrices(cell, p.fw, f"layer{i}/fw/")
            out |= _cell_matrices(cell, p.bw, f"layer{i}/bw/")
        else:
            out |= _cell_matrices(cell, p, f"layer{i}/")
    return out


def recurrent_spectrum(model: Cell | RNNLayer, params: Any) -> dict[str, Spectrum]:
    """:func:`spectrum` of every block of :func:`recurrent_matrices`.

    Examples:
        >>> import jax
        >>> import jaxseq
        >>> from jaxseq.diagnostics import recurrent_spectrum
        >>> cell = jaxseq.cells.elman(4)          # orthogonal init: |lambda| = 1
        >>> s = recurrent_spectrum(cell, cell.init(jax.random.key(0), 2))["W"]
        >>> round(s.spectral_radius, 4)
        1.0
    """
    return {k: spectrum(m) for k, m in recurrent_matrices(model, params).items()}


def step_jacobians(
    model: Cell | RNNLayer,
    params: Any,
    xs: Float[Array, "T F"],
    *,
    carry0: Any | None = None,
    wrt: Wrt = "carry",
) -> Float[Array, "T S S"]:
    r"""The per-step state Jacobians ``D_t = \partial s_t / \partial s_{t-1}``
    along the trajectory of one sequence (``jax.jacfwd`` at every step).

    For a tanh Elman net ``D_t = \operatorname{diag}(1 - h_t^2) W``; for an LSTM the
    state is ``[h, c]`` and the ``c``-to-``c`` block is ``diag(f_t)`` plus terms
    through ``h``: the forget gate is the gradient's path through time.

    Args:
        model: a cell or a forward (not bidirectional, not reversed) layer.
        params: its parameters.
        xs: ``[T, F]`` one sequence (``jax.vmap`` for a batch).
        carry0: optional initial carry for one example.
        wrt: ``"carry"`` (whole state) or ``"h"`` (the ``h`` block).

    Returns:
        ``[T, S, S]``, entry ``t`` for the step that reads ``xs[t]`` (numerator
        layout: ``[i, j] = \partial s_t[i] / \partial s_{t-1}[j]``).
    """
    cell = as_cell(model, params)
    check_rank("xs", xs, 2, "[T, F]: one sequence; jax.vmap for a batch")
    layout = state_layout(cell, params)
    index = block_index(layout, wrt)
    c0 = cell.init_carry(params) if carry0 is None else carry0
    states = trajectory(cell, params, c0, xs)
    jac = jax.vmap(jax.jacfwd(flat_step(cell, layout), argnums=1), (None, 0, 0))
    d = jac(params, states[:-1], xs)
    return d if index is None else d[:, index][:, :, index]


def step_jacobian_norms(
    model: Cell | RNNLayer,
    params: Any,
    xs: Float[Array, "*B T F"],
    *,
    carry0: Any | None = None,
    ord: Ord = "fro",
    wrt: Wrt = "carry",
) -> Float[Array, "*B T"]:
    """Norms of the per-step Jacobians of :func:`step_jacobians`.

    A norm that stays below 1 along the trajectory makes the product over ``k``
    steps (:func:`~jaxseq.diagnostics.jacobian_norms`) shrink at least
    geometrically (spectral norm: ``||P_k|| <= prod ||D_t||``).

    Args:
        model: a cell or a forward layer.
        params: its parameters.
        xs: ``[T, F]`` or ``[B, T, F]``.
        carry0: optional initial carry (leaves ``[B, ...]`` for a batch).
        ord: ``"fro"`` or ``"spectral"``.
        wrt: ``"carry"`` or ``"h"``.

    Returns:
        ``[T]`` (or ``[B, T]``).

    Examples:
        >>> import jax
        >>> import jaxseq
        >>> from jaxseq.diagnostics import step_jacobian_norms
        >>> cell = jaxseq.cells.elman(4)
        >>> params = cell.init(jax.random.key(0), 2)
        >>> xs = jax.random.normal(jax.random.key(1), (5, 2))
        >>> bool((step_jacobian_norms(cell, params, xs, ord="spectral") <= 1.0).all())
        True
    """
    check_choice("ord", ord, ("fro", "spectral"))
    cell = as_cell(model, params)

    def one(x: jax.Array, c0: Any) -> jax.Array:
        d = step_jacobians(cell, params, x, carry0=c0, wrt=wrt)
        return jax.vmap(lambda m: matrix_norm(m, ord))(d)

    return batched(one, cell, params, xs, carry0)


__all__ = [
    "Spectrum",
    "recurrent_matrices",
    "recurrent_spectrum",
    "spectrum",
    "step_jacobian_norms",
    "step_jacobians",
]
