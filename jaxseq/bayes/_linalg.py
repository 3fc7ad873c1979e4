r"""Small dense linear algebra in plain ``jax.numpy``/``lax`` ops (no LAPACK).

Every factorisation and solve that the samplers run goes through here instead of
``jnp.linalg`` / ``jax.scipy.linalg``. On CPU those call jaxlib's LAPACK custom
calls, and ``vmap`` over chains makes them batched calls. jaxlib 0.10 splits the
batch of a large enough call (measured: 4 QRs of ``[2005, 5]`` or larger, not
4 Cholesky factors up to ``17 x 17``) over XLA's intra-op thread pool and blocks
its pool thread until the pieces finish (``ParallelBatchMap`` ->
``BlockingCounter::Wait``). XLA runs independent operations of one program
concurrently on the same pool, so when as many such calls as the pool has threads
start together (two on a two-core machine), every thread waits for pieces that no
free thread can run: the Gibbs sampler at ``n = 2000``, ``m = 8``, 4 chains hung
with no CPU use. Between the hangs the calls were also slow, because the OpenBLAS
behind them runs its own threads next to XLA's. The routines below compile to
ordinary XLA loops, which ``vmap`` batches like any other array code.

The matrices are small (``k x k`` with ``k <= m + 1``, or ``[n + k, k]`` tall),
so plain loops over columns cost nothing measurable; the tall QR is ``O(n k^2)``.

Conventions: ``cholesky`` returns the lower factor; ``qr_solve`` returns the upper
triangular factor with a non-negative diagonal.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

__all__ = ["cho_solve", "cholesky", "inv_spd", "qr_solve", "solve_triangular"]


def cholesky(a: Float[Array, "k k"]) -> Float[Array, "k k"]:
    r"""Lower Cholesky factor ``L`` of a symmetric positive definite ``a``
    (``a = L L'``; only the lower triangle of ``a`` is read).

    Column-by-column (Cholesky–Banachiewicz by columns): column ``j`` of ``L`` is
    :math:`(a_{:j} - L L_{j:}') / L_{jj}` with :math:`L_{jj} = \sqrt{a_{jj} -
    \|L_{j,:j}\|^2}`. Like LAPACK's ``potrf`` it returns NaN where ``a`` is not
    (numerically) positive definite.
    """
    k = a.shape[-1]
    rows = jnp.arange(k)

    def column(j, low):
        # Columns >= j of `low` are still zero, so the full product is the sum over
        # the first j columns.
        v = a[:, j] - low @ low[j]
        diag = jnp.sqrt(v[j])
        col = jnp.where(rows > j, v / diag, jnp.where(rows == j, diag, 0.0))
        return low.at[:, j].set(col)

    return jax.lax.fori_loop(0, k, column, jnp.zeros_like(a))


def solve_triangular(
    t: Float[Array, "k k"],
    b: Float[Array, "k ..."],
    *,
    lower: bool,
    transpose: bool = False,
) -> Float[Array, "k ..."]:
    """Solve ``T x = b`` (or ``T' x = b`` with ``transpose``) for a triangular ``T``.

    ``b`` is ``[k]`` or ``[k, r]``; only the triangle ``lower`` of ``t`` is read.
    Forward or back substitution, one row per loop step.
    """
    k = t.shape[-1]
    t = t.T if transpose else t
    lower = lower != transpose  # the transpose of a lower factor is upper
    t = jnp.tril(t) if lower else jnp.triu(t)

    def row(step, x):
        i = step if lower else k - 1 - step
        # x is still zero in the rows not yet solved, so t[i] @ x sums the solved ones
        # (the diagonal term is zero too).
        return x.at[i].set((b[i] - t[i] @ x) / t[i, i])

    return jax.lax.fori_loop(0, k, row, jnp.zeros_like(b))


def cho_solve(low: Float[Array, "k k"], b: Float[Array, "k ..."]) -> Array:
    """Solve ``(L L') x = b`` given the lower Cholesky factor ``L``."""
    y = solve_triangular(low, b, lower=True)
    return solve_triangular(low, y, lower=True, transpose=True)


def inv_spd(a: Float[Array, "k k"]) -> Float[Array, "k k"]:
    """Inverse of a symmetric positive definite matrix (through its Cholesky factor)."""
    inv = cho_solve(cholesky(a), jnp.eye(a.shape[-1], dtype=a.dtype))
    return 0.5 * (inv + inv.T)


def qr_solve(
    a: Float[Array, "N k"], b: Float[Array, " N"]
) -> tuple[Float[Array, "k k"], Float[Array, " k"]]:
    r"""``(R, Q'b)`` of the thin QR decomposition ``a = Q R`` (``N >= k``).

    Householder reflections applied to the augmented matrix ``[a | b]``, so ``Q``
    is never formed: after ``k`` reflections the top ``k`` rows hold ``R`` and
    ``Q'b``. ``R``'s diagonal is made non-negative (then ``R'`` is the Cholesky
    factor of ``a'a``) by flipping the signs of rows of ``R`` and ``Q'b`` together.
    The least-squares solution of ``a x ~ b`` is ``solve_triangular(R, Q'b)``.
    Costs ``O(N k^2)``; the accuracy is that of Householder QR (backward stable),
    i.e. it depends on the condition number of ``a``, not of ``a'a``.
    """
    n_rows, k = a.shape
    rows = jnp.arange(n_rows)
    # Stored transposed, [k + 1, N]: each column of [a | b] is a contiguous row, which
    # halves the time of the reflections against the [N, k + 1] layout.
    aug = jnp.concatenate([a.T, b[None]], axis=0)

    def reflect(j, c):
        x = jnp.where(rows >= j, c[j], 0.0)
        norm = jnp.sqrt(x @ x)
        xj = c[j, j]
        sign = jnp.where(xj < 0, -1.0, 1.0).astype(c.dtype)
        v = x.at[j].add(sign * norm)  # x + sign(x_j) ||x|| e_j: no cancellation
        vtv = 2.0 * norm * (norm + jnp.abs(xj))  # = v'v
        scale = jnp.where(vtv > 0, 2.0 / jnp.where(vtv > 0, vtv, 1.0), 0.0)
        return c - jnp.outer(scale * (c @ v), v)  # (I - 2 v v'/v'v) applied to columns

    aug = jax.lax.fori_loop(0, k, reflect, aug)
    r, qtb = jnp.triu(aug[:k, :k].T), aug[k, :k]
    flip = jnp.where(jnp.diagonal(r) < 0, -1.0, 1.0).astype(r.dtype)
    return flip[:, None] * r, flip * qtb
