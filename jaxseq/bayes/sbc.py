r"""Simulation-based calibration of a Gibbs sweep (Talts et al., 2018).

For each replication: draw every parameter from the hierarchical prior, simulate
``y`` at fixed inputs, run the sweep from an unrelated start and count how many
thinned posterior draws of each scalar quantity fall below its true value. If
the sweep leaves the posterior invariant, these ranks are uniform on
``{0, ..., draws}``; :func:`rank_pvalues` tests each histogram with a chi-square
test. A sweep that is wrong in any block shows up as non-uniform ranks of the
quantities that block touches (``benchmarks/bayes.py`` shows it with the
lecture's literal step order).

Example:
    >>> import jax, numpy as np
    >>> from jaxseq.bayes import default_prior, sbc
    >>> x = np.linspace(-2, 2, 10)[:, None]
    >>> r = sbc.ranks(jax.random.key(0), default_prior(1), x, hidden=2, reps=4,
    ...               warmup=5, draws=9, thin=1)
    >>> r.shape, int(r.min()) >= 0, int(r.max()) <= 9
    ((4, 8), True, True)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._typing import Key
from . import _progress, adaptation, gibbs, moves, simulate
from .models import Prior, augment, network_mean

__all__ = ["NAMES", "quantities", "rank_pvalues", "ranks"]

#: The scalar quantities :func:`quantities` returns, in order.
NAMES = (
    "log prec",
    "mu_beta",
    "log prec_beta",
    "mu_gamma[0]",
    "mu_gamma[1]",
    "log prec_gamma[0,0]",
    "f(x_ref[0])",
    "f(x_ref[1])",
)


def quantities(pos: gibbs.NetParams, x_ref: Float[Array, "2 p"]) -> Float[Array, " 8"]:
    """The calibrated scalars (:data:`NAMES`) at a point of the posterior: noise
    and hyperparameters on the log scale for precisions, and the network mean at
    the two rows of ``x_ref`` (label invariant)."""
    f = network_mean(x_ref, pos.beta, pos.gamma, pos.b0)
    return jnp.stack(
        [
            jnp.log(pos.prec),
            pos.mu_beta,
            jnp.log(pos.prec_beta),
            pos.mu_gamma[0],
            pos.mu_gamma[1],
            jnp.log(pos.prec_gamma[0, 0]),
            f[0],
            f[1],
        ]
    )


def ranks(
    key: Key,
    prior: Prior,
    x: Float[ArrayLike, "n p"],
    *,
    hidden: int,
    reps: int,
    warmup: int,
    draws: int,
    thin: int,
    kind: str = moves.DEFAULT,
    step: Callable = gibbs.step,
    x_ref: Float[ArrayLike, "2 p"] | None = None,
    rw_scale: float = 0.6,
    batch_size: int = 50,
    progress: bool | None = None,
) -> np.ndarray:
    """Ranks ``[reps, 8]`` of the true :func:`quantities` among ``draws`` draws.

    Args:
        key: PRNG key. prior: the hierarchical prior the truths are drawn from
            (and the sampler uses). x: ``[n, p]`` fixed inputs.
        hidden: hidden units. reps: replications. warmup: sweeps discarded.
        draws, thin: ``draws`` draws kept, every ``thin``-th sweep after warm-up.
        kind: moves of the sweep (:func:`jaxseq.bayes.moves.parse_moves`).
        step: the sweep ``step(key, state, data, prior, proposal, *, kind)``
            (:func:`jaxseq.bayes.gibbs.step`; pass another to calibrate it).
        x_ref: ``[2, p]`` inputs of the two network-mean quantities
            (default: the 25% and 75% quantiles of ``x``, columnwise).
        rw_scale: random-walk step of the (unadapted) proposal.
        batch_size: replications per vectorised chunk, which bounds the memory
            of the vectorised sweep; the chunks run one after another from the
            host, through one compiled program. (The stalls once seen with
            very large batches came from batched LAPACK calls, which the sweep
            no longer makes; :mod:`jaxseq.bayes._linalg`.)
        progress: a "compiling" stage, then a bar of the replications, on
            stderr; ``None`` (default) shows them only where a person watches
            (stderr is a terminal and ``CI`` is unset), ``False`` never.

    Returns:
        Integer ranks in ``{0, ..., draws}``, a NumPy array.
    """
    x = jnp.asarray(x, jnp.float32)
    if x.ndim != 2:
        raise ValueError(f"x: expected shape [n, p], got {x.shape}.")
    n, p = x.shape
    x1 = augment(x)
    if x_ref is None:
        x_ref = jnp.quantile(x, jnp.asarray([0.25, 0.75]), axis=0)
    x_ref = jnp.asarray(x_ref, jnp.float32)
    proposal = adaptation.init_proposal(hidden, p + 1)._replace(
        log_scale=jnp.full((hidden,), jnp.log(rw_scale))
    )

    def one(key):
        k_true, k_noise, k_init, k_run = jax.random.split(key, 4)
        truth = simulate.sample_prior(k_true, prior, hidden)
        f = network_mean(x, truth.beta, truth.gamma, truth.b0)
        y = f + jax.random.normal(k_noise, (n,)) / jnp.sqrt(truth.prec)
        data = gibbs.Data(x1, y)
        state = gibbs.init(simulate.initial_position(k_init, prior, hidden))

        def sweep(state, k):
            state, _ = step(k, state, data, prior, proposal, kind=kind)
            return state, quantities(state.position, x_ref)

        keys = jax.random.split(k_run, warmup + draws * thin)
        _, q = jax.lax.scan(sweep, state, keys)
        return jnp.sum(q[warmup::thin] < quantities(truth, x_ref), axis=0)

    if type(batch_size) is not int or batch_size < 1:
        raise ValueError(
            f"batch_size: expected a positive integer, got {batch_size!r}."
        )
    return _run_chunks(jax.random.split(key, reps), one, batch_size, progress)


def _run_chunks(keys, one: Callable, batch_size: int, progress) -> np.ndarray:
    """``vmap(one)`` over ``keys`` in chunks of ``batch_size`` (the last padded),
    compiled once ahead of time, with optional progress."""
    reps = keys.shape[0]
    chunk = min(batch_size, reps)
    pad = -reps % chunk
    if pad:
        keys = jnp.concatenate([keys, keys[:pad]])
    batches = keys.reshape((-1, chunk) + keys.shape[1:])
    run = jax.jit(jax.vmap(one))
    show = _progress.enabled(progress)
    bar = _progress.Progress(reps, f"SBC, {reps} replications", unit="rep")
    with bar if show else contextlib.nullcontext():
        compiled = run.lower(batches[0]).compile()
        if show:
            bar.compiled()
        out = []
        for batch in batches:
            out.append(np.asarray(compiled(batch)))
            if show:
                bar.advance(chunk)
    return np.concatenate(out)[:reps]


def rank_pvalues(ranks: ArrayLike, draws: int, bins: int = 10) -> np.ndarray:
    """Chi-square p-value of the uniformity of each column's rank histogram.

    ``ranks`` ``[reps, q]`` in ``{0, ..., draws}``, binned into ``bins`` equal
    bins (``draws + 1`` should be a multiple of ``bins`` for exact uniformity).
    """
    from scipy import stats  # imported on use: 0.6 s

    ranks = np.asarray(ranks)
    counts = np.stack(
        [np.histogram(col, bins=bins, range=(0, draws + 1))[0] for col in ranks.T]
    )
    return np.asarray(stats.chisquare(counts, axis=1).pvalue)
