r"""Run vectorised chains of the blocked Gibbs sampler as one compiled program.

:func:`run_chains` is what :func:`jaxseq.bayes.fit` uses for ``sampler="gibbs"``
with vectorised chains. It drives :class:`~jaxseq.bayes.BlockedGibbs`'s sweep
(the same kernel and adaptation that run under :class:`numpyro.infer.MCMC`) with a
host loop over *chunks* of at most :data:`CHUNK` recorded draws:

* one jitted program (:func:`_advance`) advances all chains (``vmap``) by a
  *traced* number of sweeps and records them into a fixed ``[CHUNK]`` buffer, so
  warm-up, sampling and every run length, thinning and warm-up length share one
  compiled program (NumPyro's ``MCMC`` compiles a new loop per ``MCMC`` object and
  per run length, plus one small program per eager operation of its set-up);
* one small jitted program (:func:`_start`) draws the chains' starting points;
* both are cached by the static configuration (:class:`GibbsConfig`) and by the
  shapes of the data, so a second fit of the same shapes in the same process
  compiles nothing, and with the persistent compilation cache
  (:func:`enable_compile_cache`, on in the ``jaxseq bayes`` CLI) neither does a
  second process.

The prior is passed as traced arrays, so another prior does not recompile either.

Every sweep is the kernel's own (:meth:`BlockedGibbs._sample_one`); only the
PRNG keys differ from a NumPyro run with the same seed.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike

from .._typing import Key
from . import gibbs, moves
from .dimension import HiddenUnits
from .kernel import BlockedGibbs
from .models import Prior

__all__ = [
    "CHUNK",
    "Chains",
    "GibbsConfig",
    "compile_cache_dir",
    "enable_compile_cache",
    "run_chains",
    "sample_sites",
]

#: Draws recorded per call of the compiled program (the host loop's step).
CHUNK = 250
#: Environment variable naming the persistent compilation cache folder; ``"0"``,
#: ``"off"`` or ``""`` turn the cache off (:func:`enable_compile_cache`).
CACHE_ENV = "JAXSEQ_COMPILE_CACHE"


class GibbsConfig(NamedTuple):
    """The static part of a Gibbs run (a new value compiles a new program).

    Attributes:
        hidden: ``m`` (the number of slots ``m_max`` when ``dimension`` is set).
        bias: sample an output bias. proposal: the moves
            (:class:`jaxseq.bayes.moves.Moves`). target_accept: the random
            walk's target acceptance during warm-up. dimension: sample ``m`` too
            (:class:`~jaxseq.bayes.dimension.HiddenUnits`, validated, with
            ``max == hidden``); ``None``: ``m`` fixed.
    """

    hidden: int
    bias: bool = True
    proposal: moves.Moves | str = moves.DEFAULT
    target_accept: float = 0.3
    dimension: HiddenUnits | None = None

    def kernel(self, prior: Prior) -> BlockedGibbs:
        return BlockedGibbs(
            self.hidden,
            prior=prior,
            bias=self.bias,
            proposal=self.proposal,
            target_accept=self.target_accept,
        )


class Chains(NamedTuple):
    """Draws of :func:`run_chains`, each ``[chains, draws, ...]``.

    Attributes:
        position: :class:`~jaxseq.bayes.gibbs.NetParams` of the kept draws
            (NumPy arrays; inactive units zero with variable ``m``).
        info: :class:`~jaxseq.bayes.gibbs.GibbsInfo` of the kept sweeps (NumPy).
        state: the kernel state after the last sweep (``[chains, ...]``); with
            variable ``m`` the pair ``(kernel state, m)``.
        m: ``[chains, draws]`` numbers of active units (variable ``m``), else
            ``None``.
    """

    position: gibbs.NetParams
    info: gibbs.GibbsInfo
    state: Any
    m: np.ndarray | None = None


def _prior_arrays(prior: Prior, dtype) -> Prior:
    return Prior(*(jnp.asarray(v, dtype) for v in prior))


@functools.partial(jax.jit, static_argnames=("config",))
def _start(config: GibbsConfig, keys, x, y, prior: Prior, num_warmup):
    """Starting states ``[chains, ...]`` (one key per chain); with variable ``m``
    every chain starts with all ``m_max`` units active."""
    kernel = config.kernel(prior)
    init = lambda k: kernel._init_one(k, num_warmup, None, x, y, prior)
    state = jax.vmap(init)(keys)
    if config.dimension is None:
        return state
    nan = jnp.full(keys.shape[:1], jnp.nan, state.z.prec.dtype)
    state = state._replace(info=state.info._replace(accept_dim=nan))
    return state, jnp.full(keys.shape[:1], config.hidden, jnp.int32)


@functools.partial(jax.jit, static_argnames=("config",))
def _advance(config: GibbsConfig, state, x, y, prior: Prior, records, thin):
    """``records * thin`` sweeps of every chain, every ``thin``-th recorded.

    ``records <= CHUNK`` and ``thin`` are traced. Returns ``(state, (position,
    info))`` with the buffers ``[chains, CHUNK, ...]`` filled up to ``records``.
    """
    kernel = config.kernel(prior)
    if config.dimension is None:
        sweep = lambda _, s: kernel._sample_one(s, x, y)
        kept = lambda s: (s.z, s.info)
    else:
        sweep = lambda _, s: kernel._sweep(s[0], x, y, s[1], config.dimension)
        kept = lambda s: (s[0].z, s[0].info, s[1])

    def one_chain(state):
        buffer = jax.tree.map(
            lambda a: jnp.zeros((CHUNK, *a.shape), a.dtype), kept(state)
        )

        def record(r, carry):
            state, buffer = carry
            state = jax.lax.fori_loop(0, thin, sweep, state)
            buffer = jax.tree.map(lambda b, v: b.at[r].set(v), buffer, kept(state))
            return state, buffer

        return jax.lax.fori_loop(0, records, record, (state, buffer))

    return jax.vmap(one_chain)(state)


def run_chains(
    key: Key,
    x: ArrayLike,
    y: ArrayLike,
    config: GibbsConfig,
    prior: Prior,
    *,
    num_warmup: int,
    num_samples: int,
    num_chains: int,
    thinning: int = 1,
    progress: Any = None,
) -> Chains:
    """Run ``num_chains`` vectorised chains of :class:`~jaxseq.bayes.BlockedGibbs`.

    Arguments are used as given (validated and standardised by
    :func:`jaxseq.bayes.fit`).

    Args:
        key: PRNG key (split into one key per chain).
        x: ``[n, p]`` inputs. y: ``[n]`` responses.
        config: :class:`GibbsConfig`. prior: hyperparameters (traced).
        num_warmup: adaptation sweeps (not kept). num_samples: sampling sweeps,
            every ``thinning``-th kept (``num_samples // thinning`` draws).
        num_chains: chains (vectorised with ``vmap``).
        progress: ``None`` or a :class:`jaxseq.bayes._progress.Progress` open
            over ``num_warmup + num_samples`` steps; its compiling stage ends
            when the programs are compiled.

    Returns:
        :class:`Chains`.
    """
    dtype = jnp.result_type(float)
    x, y = jnp.asarray(x, dtype), jnp.asarray(y, dtype)
    prior = _prior_arrays(prior, dtype)
    keys = jax.random.split(key, num_chains)
    state = _start(config, keys, x, y, prior, jnp.asarray(num_warmup, jnp.int32))
    zero, one = jnp.asarray(0, jnp.int32), jnp.asarray(1, jnp.int32)
    # A call with no sweep compiles the program (and returns at once), so that the
    # compiling stage ends before the first sweep.
    state, _ = _advance(config, state, x, y, prior, zero, one)
    if progress is not None:
        jax.block_until_ready(state)
        progress.compiled()

    def chunks(total: int):
        while total > 0:
            step = min(total, CHUNK)
            yield step
            total -= step

    for step in chunks(num_warmup):
        state, _ = _advance(config, state, x, y, prior, jnp.int32(step), one)
        if progress is not None:
            jax.block_until_ready(state)
            progress.advance(step)
    kept, pieces = num_samples // thinning, []
    thin = jnp.int32(thinning)
    for step in chunks(kept):
        state, records = _advance(config, state, x, y, prior, jnp.int32(step), thin)
        # Cut on the host: slicing on the device would compile per length.
        cut = lambda a, s=step: np.asarray(a)[:, :s]
        pieces.append(jax.tree.map(cut, records))
        if progress is not None:
            jax.block_until_ready(state)
            progress.advance(step * thinning)
    if progress is not None and num_samples > kept * thinning:
        progress.advance(num_samples - kept * thinning)  # the bar ends full
    records = jax.tree.map(lambda *a: np.concatenate(a, axis=1), *pieces)
    return Chains(*records[:2], state, *records[2:])


def compile_cache_dir() -> Path | None:
    """The persistent compilation cache folder: ``$JAXSEQ_COMPILE_CACHE`` if set
    (``None`` when it is ``"0"``, ``"off"``, ``"false"`` or empty), else
    ``$XDG_CACHE_HOME/jaxseq/jax`` (``~/.cache/jaxseq/jax``)."""
    value = os.environ.get(CACHE_ENV)
    if value is not None:
        if value.strip().lower() in ("", "0", "off", "false", "no"):
            return None
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "jaxseq" / "jax"


def enable_compile_cache(path: str | Path | None = None) -> Path | None:
    """Turn on JAX's persistent compilation cache (compiled programs on disk, keyed
    by the program, the jax/jaxlib version, the device and the compiler flags), so
    that a later process skips compiling the same program.

    ``path`` defaults to :func:`compile_cache_dir`. Nothing changes, and ``None``
    is returned, when the cache is switched off (``JAXSEQ_COMPILE_CACHE=0``) or
    when the process already set ``jax_compilation_cache_dir`` (then that folder
    is returned). Programs that compiled in under 0.5 s are not stored.
    """
    current = jax.config.jax_compilation_cache_dir
    if current:
        return Path(current)
    path = compile_cache_dir() if path is None else Path(path).expanduser()
    if path is None:
        return None
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    return path


def sample_sites(
    key: Key,
    x: ArrayLike,
    y: ArrayLike,
    config: GibbsConfig,
    prior: Prior,
    *,
    num_warmup: int,
    num_samples: int,
    num_chains: int,
    thinning: int = 1,
    progress: bool = False,
) -> tuple[dict[str, Any], gibbs.GibbsInfo]:
    """:func:`run_chains` with the model's sample sites as a dict (``b0`` only with
    a bias, ``m`` only with variable ``m``; ``[chains, draws, ...]``) and, with
    ``progress``, a "compiling" stage and a bar of the sweeps per chain on stderr
    (:mod:`jaxseq.bayes._progress`).

    Returns:
        ``(sites, info)``.
    """
    run = functools.partial(
        run_chains,
        key,
        x,
        y,
        config,
        prior,
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        thinning=thinning,
    )
    if progress:
        from . import _progress

        bar = _progress.chains_bar(num_warmup, num_samples, num_chains)
        with bar:
            out = run(progress=bar)
            jax.block_until_ready(out)
    else:
        out = run()
    sites = out.position._asdict()
    if not config.bias:
        sites.pop("b0")
    if out.m is not None:
        sites["m"] = out.m
    return jax.block_until_ready(sites), out.info
