r"""Inference entry points: NUTS and the blocked Gibbs sampler, fits and predictions.

Layers, from low to high:

* :func:`run_nuts` / :func:`run_gibbs` build and run a :class:`numpyro.infer.MCMC`
  and return it (``get_samples``, ``print_summary``, ``get_extra_fields`` work as
  usual). They use the data as given.
* :func:`fit` validates the data on the host (before anything is compiled),
  standardises inputs and response (so the :func:`~jaxseq.bayes.default_prior` is
  data-scaled), runs either sampler and returns a :class:`Fit` whose samples stay on
  the standardised scale together with the :class:`Scaler` that maps back.
* :func:`predictive`, a thin wrapper of :class:`numpyro.infer.Predictive`; bands
  in original units come from :mod:`jaxseq.bayes.predict`.

Chains run ``"parallel"`` (one per device, ``pmap``) when there are at least as
many devices as chains, ``"vectorized"`` (``vmap`` on one device) otherwise. The
exception is :func:`fit`'s Gibbs sampler, which by default runs
:mod:`jaxseq.bayes.driver`'s one program with the chains vectorised on each
device and split over the local devices (:func:`~jaxseq.bayes.driver.chain_shards`).
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import monitoring
from jaxtyping import Array, ArrayLike, Float

from .._typing import Key
from . import _programs, _progress, driver, moves
from ._validate import check_hidden, check_mcmc, check_xy
from .dimension import HiddenUnits, check_hidden_units
from .models import Prior, check_prior, default_prior, regression

if TYPE_CHECKING:  # NumPyro is imported where MCMC runs (a Gibbs fit needs none)
    from numpyro.infer import MCMC

__all__ = [
    "ConvergenceWarning",
    "Fit",
    "NutsOptions",
    "Scaler",
    "compile_timer",
    "fit",
    "fit_scaler",
    "predictive",
    "run_gibbs",
    "run_nuts",
]

SAMPLERS = ("gibbs", "nuts")
_COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
    _programs.EVENT,  # loading or saving a whole compiled program
)


class Scaler(NamedTuple):
    """Affine standardisation of inputs ``[p]`` and response (scalars)."""

    x_mean: np.ndarray
    x_scale: np.ndarray
    y_mean: float
    y_scale: float

    def x(self, x: ArrayLike) -> np.ndarray:
        """Original -> standardised inputs."""
        return (np.asarray(x, dtype=float) - self.x_mean) / self.x_scale

    def y(self, y: ArrayLike) -> np.ndarray:
        """Original -> standardised response."""
        return (np.asarray(y, dtype=float) - self.y_mean) / self.y_scale

    def y_inverse(self, y_std: ArrayLike) -> Any:
        """Standardised -> original response (works on JAX arrays too)."""
        return self.y_mean + self.y_scale * y_std


def fit_scaler(x: ArrayLike, y: ArrayLike) -> Scaler:
    """Column means and standard deviations; raises ``ValueError`` for a constant
    column or response (which cannot be standardised)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    x_scale = x.std(axis=0)
    if np.any(x_scale == 0):
        j = int(np.flatnonzero(x_scale == 0)[0])
        raise ValueError(
            f"x: expected every input column to vary, got column {j} constant "
            f"(= {x[0, j]}). Drop it."
        )
    if y.std() == 0:
        raise ValueError(f"y: expected a response that varies, got constant {y[0]}.")
    return Scaler(x.mean(axis=0), x_scale, float(y.mean()), float(y.std()))


class Fit(NamedTuple):
    """A posterior fitted by :func:`fit`.

    Attributes:
        samples: site name -> ``[chains, draws, ...]`` on the standardised scale;
            with a variable number of hidden units also ``m`` ``[chains, draws]``
            (``beta`` and ``gamma`` then have ``hidden`` slots, the inactive ones
            zero, so they add nothing to ``f``).
        extra: per-draw diagnostics ``[chains, draws, ...]``: ``accept_rw``,
            ``accept_scale``, ``accept_flip``, ``accept_prior``, ``accept_hmc``,
            ``accept_group``, ``accept_sigma_beta`` (Gibbs, NaN for unused moves),
            ``accept_dim`` (the birth/death attempt, variable ``m`` only);
            ``diverging``, ``num_steps``, ``accept_prob``, ``energy`` and
            ``step_size`` (NUTS).
        scaler: maps standardised values back to original units.
        prior: the hyperparameters used (standardised scale).
        hidden, bias, sampler: the configuration (``hidden``: ``m``, or the
            number of slots ``m_max`` when ``m`` is sampled).
        x, y: the training data in original units.
        wall_s: wall time of the run (compilation included).
        compile_s: the part of ``wall_s`` spent tracing and compiling (JAX's own
            compile-event timers).
        warnings: the problems found after the run (divergences, tree-depth
            saturation, R-hat, ESS; :func:`~jaxseq.bayes.fit_warnings`), each also
            issued as a :class:`~jaxseq.bayes.ConvergenceWarning`. Empty when none.
        dimension: the :class:`~jaxseq.bayes.HiddenUnits` of a fit that sampled
            ``m``, else ``None``.
    """

    samples: dict[str, np.ndarray]
    extra: dict[str, np.ndarray]
    scaler: Scaler
    prior: Prior
    hidden: int
    bias: bool
    sampler: str
    x: np.ndarray
    y: np.ndarray
    wall_s: float
    compile_s: float
    warnings: tuple[str, ...] = ()
    dimension: HiddenUnits | None = None

    def to_arviz(
        self, *, input_names: list[str] | None = None, standardised: bool = False
    ) -> Any:
        """The fit as an :class:`arviz.InferenceData` (needs ``arviz``), in
        original units: ``posterior`` (parameters), ``sample_stats``,
        ``log_likelihood`` (pointwise, so ``arviz.loo`` works), ``observed_data``
        and ``constant_data``. See :func:`jaxseq.bayes.to_inference_data`."""
        from ._arviz import to_inference_data

        return to_inference_data(
            self, input_names=input_names, standardised=standardised
        )


class ConvergenceWarning(UserWarning):
    """The draws of a fit may not represent the posterior: divergent NUTS
    transitions, NUTS trees cut at the maximum depth, R-hat above or ESS below
    the thresholds (:func:`~jaxseq.bayes.fit_warnings`). :func:`fit` issues one
    per problem and keeps the same messages in ``Fit.warnings``."""


class NutsOptions(NamedTuple):
    """NUTS settings of :func:`fit` (NumPyro's defaults).

    Attributes:
        target_accept_prob: the step-size adaptation's target, in (0, 1); raise it
            (e.g. 0.95) when transitions diverge.
        max_tree_depth: trajectories stop after ``2**max_tree_depth - 1`` leapfrog
            steps; raise it when trees reach the limit.
    """

    target_accept_prob: float = 0.8
    max_tree_depth: int = 10


def check_nuts_options(options: Any) -> NutsOptions:
    """Return ``options`` (``None``: the defaults) as validated :class:`NutsOptions`."""
    if options is None:
        return NutsOptions()
    if not isinstance(options, NutsOptions):
        raise TypeError(f"nuts: expected NutsOptions or None, got {options!r}.")
    target, depth = options
    if isinstance(target, bool) or not isinstance(target, float | int):
        raise TypeError(f"nuts.target_accept_prob: expected a number, got {target!r}.")
    if not 0.0 < target < 1.0:
        raise ValueError(
            f"nuts.target_accept_prob: expected a value in (0, 1), got {target}."
        )
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(
            f"nuts.max_tree_depth: expected a positive integer, got {depth!r}."
        )
    return NutsOptions(float(target), depth)


@contextlib.contextmanager
def compile_timer() -> Iterator[list[float]]:
    """Seconds JAX spends tracing, lowering and compiling inside the block.

    Yields a one-element list whose value is set on exit. It is the length of the
    union of the time spans of JAX's compile events (nested traces of inner
    jitted functions overlap their outer trace and are counted once).
    """
    spans: list[tuple[float, float]] = []
    total = [0.0]

    def listener(event: str, start: float, end: float, **_: Any) -> None:
        if event in _COMPILE_EVENTS:
            spans.append((start, end))

    monitoring.register_event_time_span_listener(listener)
    try:
        yield total
    finally:
        monitoring.unregister_event_time_span_listener(listener)
        covered, reach = 0.0, -np.inf
        for start, end in sorted(spans):
            if end > reach:
                covered += end - max(start, reach)
                reach = end
        total[0] = covered


def _chain_method(num_chains: int, chain_method: str | None) -> str:
    if chain_method is not None:
        return chain_method
    if num_chains > 1 and jax.local_device_count() >= num_chains:
        return "parallel"
    return "vectorized"


def _run_mcmc(
    key: Key,
    kernel: Any,
    args: tuple,
    *,
    num_warmup: int,
    num_samples: int,
    num_chains: int,
    thinning: int,
    chain_method: str | None,
    progress: bool | None,
    **run_kwargs: Any,
) -> MCMC:
    """Build ``numpyro.infer.MCMC`` (chain method by :func:`_chain_method`), run it
    and return it; with progress, a "compiling" stage and then a bar of the
    iterations per chain (:mod:`jaxseq.bayes._progress`)."""
    from numpyro.infer import MCMC

    method = _chain_method(num_chains, chain_method)
    settings = dict(
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        thinning=thinning,
        chain_method=method,
        progress_bar=False,
    )
    if not _progress.enabled(progress):
        mcmc = MCMC(kernel, **settings)
        mcmc.run(key, *args, **run_kwargs)
        return mcmc
    bar = _progress.chains_bar(
        num_warmup,
        num_samples,
        num_chains,
        sequential=method == "sequential",
        calls_per_step=num_chains if method == "parallel" else 1,
    )
    with bar:
        mcmc = MCMC(_progress.TickingKernel(kernel, bar.tick), **settings)
        mcmc.run(key, *args, **run_kwargs)
        jax.block_until_ready(mcmc.get_samples())
    return mcmc


#: NumPyro's extra fields collected by :func:`run_nuts` (``Fit.extra`` keys).
NUTS_FIELDS = (
    "diverging",
    "num_steps",
    "accept_prob",
    "energy",
    "adapt_state.step_size",
)


def run_nuts(
    key: Key,
    model: Callable,
    *args: Any,
    num_warmup: int,
    num_samples: int,
    num_chains: int = 1,
    thinning: int = 1,
    chain_method: str | None = None,
    target_accept_prob: float = 0.8,
    max_tree_depth: int = 10,
    progress: bool | None = None,
    **kwargs: Any,
) -> MCMC:
    """Run NUTS (NumPyro's defaults: dual-averaging step size, diagonal mass matrix).

    Collects the extra fields :data:`NUTS_FIELDS`: ``diverging``, ``num_steps``
    (leapfrog steps), ``accept_prob``, ``energy`` and ``adapt_state.step_size``.

    Args:
        key: PRNG key. model: a NumPyro model, called as ``model(*args, **kwargs)``.
        num_warmup, num_samples, num_chains: per chain; ``num_samples`` counts
            iterations, of which every ``thinning``-th is kept.
        chain_method: ``None`` chooses ``"parallel"``/``"vectorized"`` (module doc).
        target_accept_prob, max_tree_depth: NUTS settings.
        progress: a "compiling" stage, then a bar of the iterations, on stderr;
            ``None`` shows it only where a person watches (stderr a terminal,
            ``CI`` unset).

    Returns:
        The :class:`numpyro.infer.MCMC` object after ``run``.
    """
    check_mcmc(num_warmup, num_samples, num_chains, thinning, chain_method)
    check_nuts_options(NutsOptions(target_accept_prob, max_tree_depth))
    from numpyro.infer import NUTS

    kernel = NUTS(
        model, target_accept_prob=target_accept_prob, max_tree_depth=max_tree_depth
    )
    return _run_mcmc(
        key,
        kernel,
        args,
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        thinning=thinning,
        chain_method=chain_method,
        progress=progress,
        extra_fields=NUTS_FIELDS,
        **kwargs,
    )


def run_gibbs(
    key: Key,
    x: Float[ArrayLike, "n p"],
    y: Float[ArrayLike, " n"],
    *,
    hidden: int,
    num_warmup: int,
    num_samples: int,
    num_chains: int = 1,
    thinning: int = 1,
    prior: Prior | None = None,
    bias: bool = True,
    proposal: str | moves.Moves = moves.DEFAULT,
    target_accept: float = 0.3,
    chain_method: str | None = None,
    progress: bool | None = None,
) -> MCMC:
    """Run the blocked Gibbs/Metropolis sampler (:class:`BlockedGibbs`) under MCMC.

    ``x`` and ``y`` are used as given (no standardisation; see :func:`fit`).
    ``get_extra_fields()["info"]`` holds the per-sweep
    :class:`~jaxseq.bayes.gibbs.GibbsInfo` (acceptance probabilities, log-likelihood).
    ``progress`` as in :func:`run_nuts`.
    """
    check_mcmc(num_warmup, num_samples, num_chains, thinning, chain_method)
    from .kernel import BlockedGibbs

    kernel = BlockedGibbs(
        hidden, prior=prior, bias=bias, proposal=proposal, target_accept=target_accept
    )
    return _run_mcmc(
        key,
        kernel,
        (jnp.asarray(x), jnp.asarray(y)),
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        thinning=thinning,
        chain_method=chain_method,
        progress=progress,
    )


def fit(
    key: Key,
    x: Float[ArrayLike, "n p"],
    y: Float[ArrayLike, " n"],
    *,
    hidden: int | HiddenUnits,
    sampler: str = "gibbs",
    prior: Prior | None = None,
    bias: bool = True,
    num_warmup: int = 1000,
    num_samples: int = 1000,
    num_chains: int = 4,
    thinning: int = 1,
    chain_method: str | None = None,
    proposal: str | moves.Moves = moves.DEFAULT,
    nuts: NutsOptions | None = None,
    progress: bool | None = None,
) -> Fit:
    """Fit the Müller–Ríos Insua regression network by MCMC.

    The data are validated on the host first (NaN/inf, ranks, lengths, constant
    columns, the prior's positive definiteness), then standardised; ``prior``
    (default :func:`~jaxseq.bayes.default_prior`) applies on that scale.

    Args:
        key: PRNG key.
        x: ``[n, p]`` inputs. y: ``[n]`` responses.
        hidden: number of hidden units ``m``, or a
            :class:`~jaxseq.bayes.HiddenUnits` (e.g. ``HiddenUnits(max=8)``) to
            sample ``m`` on ``1..max`` with birth/death moves
            (:mod:`jaxseq.bayes.dimension`; Gibbs with vectorised chains only).
        sampler: ``"gibbs"`` (:class:`~jaxseq.bayes.BlockedGibbs`) or ``"nuts"``.
            Gibbs with ``chain_method`` ``None`` or ``"vectorized"`` runs as one
            cached program (:mod:`jaxseq.bayes.driver`), so a second fit of the
            same shapes and configuration compiles nothing.
        prior, bias: model options (:func:`~jaxseq.bayes.regression`).
        num_warmup, num_samples, num_chains, thinning, chain_method: MCMC settings
            (``num_samples`` iterations per chain, every ``thinning``-th kept).
            Gibbs: ``None`` splits the vectorised chains over the local devices
            (:func:`~jaxseq.bayes.driver.chain_shards`; the ``jaxseq bayes`` CLI
            makes one CPU device per core), ``"vectorized"`` keeps them on one
            device, ``"parallel"``/``"sequential"`` run NumPyro's ``MCMC``
            (:func:`run_gibbs`). NUTS: ``None`` chooses ``"parallel"`` when there
            are at least as many devices as chains, else ``"vectorized"``.
        proposal: Gibbs moves, ``"+"``-joined from ``"rw"``, ``"scale"``,
            ``"flip"``, ``"prior"``, ``"hmc"``, ``"group"`` and ``"sigma_beta"``
            (:func:`jaxseq.bayes.moves.parse_moves`; default all but ``"prior"``);
            ignored by NUTS.
        nuts: :class:`NutsOptions` (target acceptance, maximum tree depth);
            ignored by the Gibbs sampler.
        progress: show a "compiling" stage, then a bar of the iterations per
            chain, on stderr; ``None`` (default) shows them only where a person
            watches (stderr is a terminal and ``CI`` is unset), ``False`` never.

    Returns:
        A :class:`Fit`. Its ``warnings`` list the problems found
        (:func:`~jaxseq.bayes.fit_warnings`); each is also issued as a
        :class:`~jaxseq.bayes.ConvergenceWarning`.

    Raises:
        ValueError: bad data, prior, ``hidden`` (or its fields), ``sampler``
            (variable ``m`` needs ``"gibbs"``), ``chain_method`` (variable ``m``
            needs ``None`` or ``"vectorized"``), run lengths
            (``num_warmup < 0``, ``num_samples < 1``, ``num_chains < 1``,
            ``thinning``), ``proposal`` or ``nuts``, all before compiling.
        TypeError: ``progress`` not ``True``, ``False`` or ``None``.
    """
    xa, ya = check_xy(x, y)
    dimension = None
    if isinstance(hidden, HiddenUnits):
        dimension = check_hidden_units(hidden)
        hidden = dimension.max
    hidden = check_hidden(hidden)
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler: expected one of {SAMPLERS}, got {sampler!r}.")
    if dimension is not None and sampler != "gibbs":
        raise ValueError(
            f"sampler: a variable number of hidden units (hidden=HiddenUnits) needs "
            f"'gibbs', got {sampler!r}."
        )
    if dimension is not None and chain_method not in (None, "vectorized"):
        raise ValueError(
            "chain_method: a variable number of hidden units (hidden=HiddenUnits) "
            f"runs vectorised chains, expected None or 'vectorized', got "
            f"{chain_method!r}."
        )
    num_warmup, num_samples, num_chains, thinning = check_mcmc(
        num_warmup, num_samples, num_chains, thinning, chain_method
    )
    proposal = moves.as_moves(proposal)  # parsed once; errors name `proposal`
    nuts = check_nuts_options(nuts)
    progress = _progress.enabled(progress)  # TypeError for anything but a bool/None
    prior = default_prior(xa.shape[1]) if prior is None else prior
    check_prior(prior, xa.shape[1])
    scaler = fit_scaler(xa, ya)
    # converted on the host (a float64 -> float32 jnp.asarray compiles a program)
    xs = jax.device_put(scaler.x(xa).astype(jnp.result_type(float)))
    ys = jax.device_put(scaler.y(ya).astype(jnp.result_type(float)))
    settings = dict(
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        thinning=thinning,
        chain_method=chain_method,
        progress=progress,
    )
    start = time.perf_counter()
    # Gibbs runs driver.py's one cached program unless NumPyro's "parallel" or
    # "sequential" chains are asked for; by default its chains are split over
    # the local devices, with chain_method="vectorized" they stay on one.
    vectorized = chain_method in (None, "vectorized")
    with compile_timer() as compiled:
        if sampler == "gibbs" and vectorized:  # one cached program (driver.py)
            samples, info = driver.sample_sites(
                key,
                xs,
                ys,
                driver.GibbsConfig(hidden, bool(bias), proposal, dimension=dimension),
                prior,
                num_warmup=num_warmup,
                num_samples=num_samples,
                num_chains=num_chains,
                thinning=thinning,
                progress=progress,
                shards=None if chain_method is None else 1,
            )
        elif sampler == "gibbs":
            mcmc = run_gibbs(
                key,
                xs,
                ys,
                hidden=hidden,
                prior=prior,
                bias=bias,
                proposal=proposal,
                **settings,
            )
        else:
            mcmc = run_nuts(
                key,
                regression,
                xs,
                ys,
                hidden=hidden,
                prior=prior,
                bias=bias,
                target_accept_prob=nuts.target_accept_prob,
                max_tree_depth=nuts.max_tree_depth,
                **settings,
            )
        if not (sampler == "gibbs" and vectorized):
            samples = jax.block_until_ready(mcmc.get_samples(group_by_chain=True))
            fields = mcmc.get_extra_fields(group_by_chain=True)
            info = fields.get("info")
    wall = time.perf_counter() - start
    if sampler == "gibbs":
        names = moves.MOVES + moves.SWEEP_MOVES + ("dim",) * (dimension is not None)
        extra = {f"accept_{k}": getattr(info, f"accept_{k}") for k in names}
    else:
        extra = {k.removeprefix("adapt_state."): fields[k] for k in NUTS_FIELDS}
    as_np = lambda tree: {k: np.asarray(v) for k, v in tree.items()}
    result = Fit(
        as_np(samples),
        as_np(extra),
        scaler,
        prior,
        hidden,
        bool(bias),
        sampler,
        xa,
        ya,
        wall,
        compiled[0],
        dimension=dimension,
    )
    from .diagnostics import fit_warnings  # imports this module

    problems = fit_warnings(result, max_tree_depth=nuts.max_tree_depth)
    for message in problems:
        warnings.warn(message, ConvergenceWarning, stacklevel=2)
    return result._replace(warnings=problems)


def predictive(
    key: Key, model: Callable, samples: dict[str, ArrayLike], *args: Any, **kwargs: Any
) -> dict[str, Array]:
    """``numpyro.infer.Predictive(model, samples)(key, *args, **kwargs)``.

    ``samples`` are flat (``[draws, ...]``); use ``mcmc.get_samples()``, or reshape a
    :class:`Fit`'s ``[chains, draws, ...]`` arrays.
    """
    from numpyro.infer import Predictive

    return Predictive(model, posterior_samples=dict(samples))(key, *args, **kwargs)
