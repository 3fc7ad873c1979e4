r"""Gaussian-process regression, the baseline of the Bayesian network benchmark.

The model, on the standardised scale of :func:`~jaxseq.bayes.fit_scaler` (so that
its numbers compare with the network's), is

.. math::

    y_i = f(x_i) + \epsilon_i,\qquad f \sim \mathrm{GP}(0,\ a^2 k_\ell(x, x')),
    \qquad \epsilon_i \sim N(0, \sigma^2),

with amplitude :math:`a`, length scale(s) :math:`\ell` (one, or one per input
column) and noise sd :math:`\sigma` (:class:`GPParams`). A *kernel* is a plain
function ``kernel(x1 [n1, p], x2 [n2, p], length_scale [] or [p]) -> [n1, n2]``
returning unit-amplitude covariances: :func:`squared_exponential`,
:func:`matern52`, or the network prior's own infinite-width kernels in
:mod:`jaxseq.bayes.nngp` (which carry ``uses_length_scale = False``). Names map
to kernels only at the edge (:func:`kernel_from_name`, for a command line).

Hyperparameters come from type-II maximum likelihood (:func:`fit_gp`: Adam on
the log marginal likelihood from several random starts) or from
NUTS (:func:`fit_gp_nuts`, NumPyro, log-normal priors). Prediction follows
Rasmussen & Williams (2006), algorithm 2.1: one Cholesky factor of
:math:`a^2K + (\sigma^2 + \text{jitter})I`, computed in float64.

References:
    C. E. Rasmussen and C. K. I. Williams (2006), *Gaussian Processes for Machine
    Learning*, MIT Press, chapters 2 and 5.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import optax
from jax.scipy.linalg import cho_solve, solve_triangular
from jaxtyping import Array, ArrayLike, Float

from .._typing import Key
from ._validate import check_x, check_xy
from .infer import Scaler, compile_timer, fit_scaler, run_nuts

__all__ = [
    "GPFit",
    "GPOptions",
    "GPParams",
    "GPPrediction",
    "KERNELS",
    "check_gp_params",
    "fit_gp",
    "fit_gp_nuts",
    "gp_log_predictive_density",
    "gp_posterior",
    "kernel_from_name",
    "log_marginal_likelihood",
    "matern32",
    "matern52",
    "predict_gp",
    "squared_exponential",
]

Kernel = Callable[[Array, Array, Array], Array]
"""``kernel(x1 [n1, p], x2 [n2, p], length_scale [] or [p]) -> [n1, n2]``."""


# ------------------------------------------------------------------------ kernels
def _sq_dist(x1: Array, x2: Array, length_scale: Array) -> Array:
    """Squared distances of the scaled inputs, from differences (no cancellation)."""
    diff = (x1[:, None, :] - x2[None, :, :]) / length_scale
    return jnp.sum(diff**2, axis=-1)


def squared_exponential(
    x1: Float[Array, "n1 p"], x2: Float[Array, "n2 p"], length_scale: Array
) -> Float[Array, "n1 n2"]:
    r""":math:`k(x, x') = \exp(-r^2/2)`,
    :math:`r^2 = \sum_k (x_k - x'_k)^2/\ell_k^2`."""
    return jnp.exp(-0.5 * _sq_dist(x1, x2, length_scale))


def _dist(r2: Array) -> Array:
    """``sqrt(r2)`` with a finite gradient at ``r2 = 0`` (the diagonal)."""
    positive = r2 > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, r2, 1.0)), 0.0)


def matern32(
    x1: Float[Array, "n1 p"], x2: Float[Array, "n2 p"], length_scale: Array
) -> Float[Array, "n1 n2"]:
    r"""Matérn-3/2: :math:`k = (1 + \sqrt3 r)\exp(-\sqrt3 r)`."""
    r = _dist(_sq_dist(x1, x2, length_scale))
    s3r = math.sqrt(3.0) * r
    return (1.0 + s3r) * jnp.exp(-s3r)


def matern52(
    x1: Float[Array, "n1 p"], x2: Float[Array, "n2 p"], length_scale: Array
) -> Float[Array, "n1 n2"]:
    r"""Matérn-5/2: :math:`k = (1 + \sqrt5 r + 5r^2/3)\exp(-\sqrt5 r)`."""
    r2 = _sq_dist(x1, x2, length_scale)
    r = _dist(r2)
    s5r = math.sqrt(5.0) * r
    return (1.0 + s5r + 5.0 / 3.0 * r2) * jnp.exp(-s5r)


KERNELS: dict[str, Kernel] = {
    "se": squared_exponential,
    "matern32": matern32,
    "matern52": matern52,
}
"""Names for the command line and the benchmark (the library takes functions)."""


def kernel_from_name(name: str, argument: str = "kernel") -> Kernel:
    """The kernel called ``name`` in :data:`KERNELS`, for a command line's edge.

    Raises:
        ValueError: naming ``argument`` (e.g. a flag) and the known names, for an
            unknown name.
    """
    if not isinstance(name, str) or name not in KERNELS:
        raise ValueError(
            f"{argument}: expected one of {sorted(KERNELS)}, got {name!r}."
        )
    return KERNELS[name]


def _uses_length_scale(kernel: Kernel) -> bool:
    return bool(getattr(kernel, "uses_length_scale", True))


def _call(kernel, x1, x2, length_scale):
    return kernel(x1, x2, length_scale)


def _as_pytree(kernel: Kernel) -> jax.tree_util.Partial:
    """The kernel as a pytree argument of a jitted function: a plain function
    becomes static, a kernel object that is a pytree (:mod:`~jaxseq.bayes.nngp`)
    keeps its arrays as traced leaves (no recompiling for new draws)."""
    leaves = jax.tree.leaves(kernel)
    if len(leaves) == 1 and leaves[0] is kernel:  # an opaque callable
        return jax.tree_util.Partial(kernel)
    return jax.tree_util.Partial(_call, kernel)


# ------------------------------------------------------------------ parameters
class GPParams(NamedTuple):
    """GP hyperparameters on the standardised scale.

    Attributes:
        amplitude: ``[]`` signal sd :math:`a` (> 0).
        length_scale: ``[]`` or ``[p]`` length scale(s) :math:`\\ell` (> 0);
            ignored by kernels with ``uses_length_scale = False``.
        noise: ``[]`` noise sd :math:`\\sigma` (> 0).

    A fit from :func:`fit_gp_nuts` holds draws: a leading ``[S]`` axis on each.
    """

    amplitude: Any
    length_scale: Any
    noise: Any


def check_gp_params(params: Any, num_inputs: int | None = None) -> None:
    """Raise ``ValueError`` naming the field unless every value is finite and > 0
    and ``length_scale`` has shape ``()``, ``(1,)`` or ``(num_inputs,)``.

    Traced values (inside ``jax.jit``) are not checked.
    """
    if not isinstance(params, GPParams):
        raise TypeError(
            f"params: expected a jaxseq.bayes.GPParams, got {type(params).__name__}."
        )
    for name in GPParams._fields:
        value = getattr(params, name)
        if isinstance(value, jax.core.Tracer):
            continue
        arr = np.asarray(value, dtype=float)
        if name != "length_scale" and arr.shape != ():
            raise ValueError(
                f"params.{name}: expected a scalar, got shape {arr.shape}."
            )
        bad_shape = arr.ndim > 1 or (
            arr.ndim == 1
            and num_inputs is not None
            and arr.shape[0] not in (1, num_inputs)
        )
        if name == "length_scale" and bad_shape:
            raise ValueError(
                f"params.length_scale: expected shape () or ({num_inputs},) (one per "
                f"input column), got shape {arr.shape}."
            )
        if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
            raise ValueError(
                f"params.{name}: expected finite positive values, got {arr.tolist()!r}."
            )


class GPOptions(NamedTuple):
    """Settings of :func:`fit_gp`.

    Attributes:
        restarts: random starting points of the optimiser (>= 1); the best wins.
        steps: Adam iterations per start (>= 1).
        learning_rate: Adam's initial step (cosine decay to 1% of it), on the
            log-hyperparameters.
        ard: one length scale per input column (automatic relevance
            determination) instead of one shared length scale.
        jitter: added to the diagonal of the covariance (standardised units).
    """

    restarts: int = 4
    steps: int = 250
    learning_rate: float = 0.1
    ard: bool = False
    jitter: float = 1e-6


def _check_options(options: Any) -> GPOptions:
    if not isinstance(options, GPOptions):
        raise TypeError(
            f"options: expected a jaxseq.bayes.GPOptions, got {type(options).__name__}."
        )
    for name in ("restarts", "steps"):
        value = getattr(options, name)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | np.integer)
            or value < 1
        ):
            raise ValueError(
                f"options.{name}: expected a positive integer, got {value!r}."
            )
    if not (np.isfinite(options.learning_rate) and options.learning_rate > 0):
        raise ValueError(
            "options.learning_rate: expected a finite value > 0, got "
            f"{options.learning_rate!r}."
        )
    if not (np.isfinite(options.jitter) and options.jitter >= 0):
        raise ValueError(
            f"options.jitter: expected a finite value >= 0, got {options.jitter!r}."
        )
    return options


# ------------------------------------------------------------- the equations
def _covariance(kernel, params, x, jitter):
    k = params.amplitude**2 * kernel(x, x, params.length_scale)
    return k + (params.noise**2 + jitter) * jnp.eye(x.shape[0], dtype=k.dtype)


def log_marginal_likelihood(
    kernel: Kernel,
    params: GPParams,
    x: Float[ArrayLike, "n p"],
    y: Float[ArrayLike, " n"],
    *,
    jitter: float = 0.0,
) -> Float[Array, ""]:
    r""":math:`\log p(y \mid x, a, \ell, \sigma) = -\tfrac12 y'\alpha - \sum_i
    \log L_{ii} - \tfrac n2 \log 2\pi` (R&W alg. 2.1), :math:`LL' = a^2K +
    (\sigma^2 + \text{jitter})I`, :math:`\alpha = (LL')^{-1}y`.

    Differentiable in ``params``; the dtype follows the inputs (call it inside
    ``jax.enable_x64(True)`` for float64).
    """
    check_gp_params(params, np.shape(x)[-1])
    x, y = jnp.asarray(x), jnp.asarray(y)
    chol = jnp.linalg.cholesky(_covariance(kernel, params, x, jitter))
    alpha = cho_solve((chol, True), y)
    return (
        -0.5 * y @ alpha
        - jnp.sum(jnp.log(jnp.diagonal(chol)))
        - 0.5 * y.shape[0] * math.log(2 * math.pi)
    )


def _prior_diag(kernel, length_scale, x_new):
    one = lambda row: kernel(row[None], row[None], length_scale)[0, 0]
    return jax.vmap(one)(x_new)


def gp_posterior(
    kernel: Kernel,
    params: GPParams,
    x: Float[ArrayLike, "n p"],
    y: Float[ArrayLike, " n"],
    x_new: Float[ArrayLike, "m p"],
    *,
    jitter: float = 0.0,
) -> tuple[Float[Array, " m"], Float[Array, " m"]]:
    r"""Posterior mean and variance of ``f(x_new)`` (R&W alg. 2.1).

    :math:`\bar f_* = k_*'\alpha`, :math:`V[f_*] = k(x_*, x_*) - v'v`,
    :math:`v = L^{-1}k_*`. Add ``noise**2`` for the predictive variance of ``y``.
    """
    check_gp_params(params, np.shape(x)[-1])
    x, y, x_new = jnp.asarray(x), jnp.asarray(y), jnp.asarray(x_new)
    chol = jnp.linalg.cholesky(_covariance(kernel, params, x, jitter))
    alpha = cho_solve((chol, True), y)
    amp2 = params.amplitude**2
    k_star = amp2 * kernel(x, x_new, params.length_scale)
    v = solve_triangular(chol, k_star, lower=True)
    var = amp2 * _prior_diag(kernel, params.length_scale, x_new) - jnp.sum(v**2, 0)
    return k_star.T @ alpha, jnp.maximum(var, 0.0)


# ------------------------------------------------------------------------ fits
class GPFit(NamedTuple):
    """A GP fitted by :func:`fit_gp` or :func:`fit_gp_nuts`.

    Attributes:
        kernel: the kernel function.
        params: :class:`GPParams` with a leading ``[S]`` axis (``S = 1`` for
            ML-II, the posterior draws for NUTS), standardised units.
        scaler: the standardisation (:func:`~jaxseq.bayes.fit_scaler`).
        x, y: ``[n, p]`` and ``[n]`` standardised training data.
        log_marginal: ``[S]`` log marginal likelihood (standardised scale) at
            each set of hyperparameters.
        method: ``"ml2"`` or ``"nuts"``.
        jitter: diagonal jitter used.
        wall_s, compile_s: wall time of the fit and the part spent compiling.
        extra: method details (``restart_log_marginal`` for ML-II; NUTS
            divergences).
    """

    kernel: Kernel
    params: GPParams
    scaler: Scaler
    x: np.ndarray
    y: np.ndarray
    log_marginal: np.ndarray
    method: str
    jitter: float
    wall_s: float
    compile_s: float
    extra: dict


def _prepare(x, y, kernel):
    if not callable(kernel):
        raise TypeError(
            f"kernel: expected a kernel function such as jaxseq.bayes.gp.matern52 "
            f"(use kernel_from_name for a name), got {kernel!r}."
        )
    xa, ya = check_xy(x, y)
    scaler = fit_scaler(xa, ya)
    return scaler, scaler.x(xa), scaler.y(ya)


def _unpack(theta, uses_length_scale, ard):
    log_amp, log_ls, log_noise = theta
    ls = jnp.exp(log_ls) if ard else jnp.exp(log_ls[0])
    if not uses_length_scale:
        ls = jnp.ones((), log_amp.dtype)
    return GPParams(jnp.exp(log_amp), ls, jnp.exp(log_noise))


@functools.partial(
    jax.jit, static_argnames=("uses_length_scale", "ard", "steps", "learning_rate")
)
def _ml2(theta0, x, y, kernel, jitter, *, uses_length_scale, ard, steps, learning_rate):
    n = x.shape[0]

    def loss(theta):
        params = _unpack(theta, uses_length_scale, ard)
        return -log_marginal_likelihood(kernel, params, x, y, jitter=jitter) / n

    schedule = optax.cosine_decay_schedule(learning_rate, steps, alpha=0.01)
    opt = optax.adam(schedule)

    def run(theta):
        def body(carry, _):
            theta, state = carry
            grad = jax.grad(loss)(theta)
            grad = jax.tree.map(lambda g: jnp.where(jnp.isfinite(g), g, 0.0), grad)
            updates, state = opt.update(grad, state, theta)
            return (optax.apply_updates(theta, updates), state), None

        (theta, _), _ = jax.lax.scan(body, (theta, opt.init(theta)), None, length=steps)
        return theta, -n * loss(theta)

    # lax.map, not vmap: a batched Cholesky inside a loop is ~25x slower on CPU
    return jax.lax.map(run, theta0)


def fit_gp(
    key: Key,
    x: Float[ArrayLike, "n p"],
    y: Float[ArrayLike, " n"],
    kernel: Kernel = matern52,
    *,
    options: GPOptions | None = None,
) -> GPFit:
    """Type-II maximum likelihood: the hyperparameters that maximise
    :func:`log_marginal_likelihood` of the standardised data.

    Adam (optax, cosine-decayed step) on ``(log a, log l, log sigma)`` from
    ``options.restarts`` starting points (the first at ``a = 1, l = 1, sigma =
    0.3``, the others drawn around it), one after the other in one float64
    program; the start with the largest likelihood wins (a start whose Cholesky
    failed counts as ``-inf``).

    Args:
        key: PRNG key for the starting points.
        x: ``[n, p]`` inputs. y: ``[n]`` responses (finite; standardised here).
        kernel: a kernel function (default :func:`matern52`).
        options: :class:`GPOptions` (``None``: the defaults).

    Returns:
        A :class:`GPFit` with ``S = 1``.

    Raises:
        ValueError: non-finite or mis-shaped data, bad ``options``.
        TypeError: ``kernel`` not callable (a name: use :func:`kernel_from_name`).
    """
    options = _check_options(GPOptions() if options is None else options)
    scaler, xs, ys = _prepare(x, y, kernel)
    num_ls = xs.shape[1] if options.ard else 1
    start = time.perf_counter()
    with jax.enable_x64(True), compile_timer() as compiled:
        r = options.restarts
        noise = jax.random.normal(key, (r, 2 + num_ls)).at[0].set(0.0)
        theta0 = (
            0.5 * noise[:, 0],
            0.7 * noise[:, 1 : 1 + num_ls],
            math.log(0.3) + 0.7 * noise[:, -1],
        )
        theta, lml = _ml2(
            jax.tree.map(lambda v: jnp.asarray(v, jnp.float64), theta0),
            jnp.asarray(xs, jnp.float64),
            jnp.asarray(ys, jnp.float64),
            _as_pytree(kernel),
            float(options.jitter),
            uses_length_scale=_uses_length_scale(kernel),
            ard=bool(options.ard),
            steps=int(options.steps),
            learning_rate=float(options.learning_rate),
        )
        lml = np.asarray(lml)
        finite = np.where(np.isfinite(lml), lml, -np.inf)
        if not np.isfinite(finite).any():
            raise FloatingPointError(
                "fit_gp: every restart failed (non-finite marginal likelihood); "
                "raise options.jitter."
            )
        best = int(np.argmax(finite))
        params = _unpack(
            jax.tree.map(lambda v: v[best], theta),
            _uses_length_scale(kernel),
            bool(options.ard),
        )
        params = GPParams(*(np.asarray(v, float)[None] for v in params))
    wall = time.perf_counter() - start
    return GPFit(
        kernel, params, scaler, xs, ys, finite[best : best + 1], "ml2",
        float(options.jitter), wall, compiled[0],
        {"restart_log_marginal": finite.tolist()},
    )  # fmt: skip


def _gp_model(x, y, *, kernel, ard, jitter):
    """NumPyro model: log-normal priors on the standardised scale."""
    amplitude = numpyro.sample("amplitude", dist.LogNormal(0.0, 1.0))
    if _uses_length_scale(kernel):
        shape = (x.shape[1],) if ard else ()
        length_scale = numpyro.sample(
            "length_scale", dist.LogNormal(0.0, 1.0).expand(shape).to_event(len(shape))
        )
    else:
        length_scale = jnp.ones(())
    noise = numpyro.sample("noise", dist.LogNormal(math.log(0.3), 1.0))
    params = GPParams(amplitude, length_scale, noise)
    cov = _covariance(kernel, params, x, jitter)
    numpyro.sample("y", dist.MultivariateNormal(jnp.zeros(x.shape[0]), cov), obs=y)


def fit_gp_nuts(
    key: Key,
    x: Float[ArrayLike, "n p"],
    y: Float[ArrayLike, " n"],
    kernel: Kernel = matern52,
    *,
    num_warmup: int = 500,
    num_samples: int = 500,
    num_chains: int = 2,
    ard: bool = False,
    jitter: float = 1e-6,
    progress: bool | None = False,
) -> GPFit:
    """Hyperparameters by NUTS: priors ``a ~ LogNormal(0, 1)``, each
    ``l ~ LogNormal(0, 1)``, ``sigma ~ LogNormal(log 0.3, 1)`` on the standardised
    scale, the GP marginal likelihood as the likelihood (float64).

    Returns:
        A :class:`GPFit` whose ``params`` hold the ``S = num_chains *
        num_samples`` draws; predictions average over them.
    """
    _check_options(GPOptions(restarts=1, steps=1, jitter=jitter))
    scaler, xs, ys = _prepare(x, y, kernel)
    model = functools.partial(_gp_model, kernel=kernel, ard=bool(ard), jitter=jitter)
    start = time.perf_counter()
    with jax.enable_x64(True), compile_timer() as compiled:
        mcmc = run_nuts(
            key, model, jnp.asarray(xs, jnp.float64), jnp.asarray(ys, jnp.float64),
            num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
            chain_method="sequential", progress=progress,
        )  # fmt: skip
        s = mcmc.get_samples()
        draws = s["amplitude"].shape[0]
        ls = s.get("length_scale", jnp.ones((draws,)))
        params = GPParams(
            *(np.asarray(v, float) for v in (s["amplitude"], ls, s["noise"]))
        )
        lml = _batched_lml(kernel, params, xs, ys, jitter)
        diverging = int(np.asarray(mcmc.get_extra_fields()["diverging"]).sum())
    wall = time.perf_counter() - start
    return GPFit(
        kernel, params, scaler, xs, ys, lml, "nuts", float(jitter), wall,
        compiled[0], {"divergences": diverging},
    )  # fmt: skip


def _batched_lml(kernel, params, xs, ys, jitter):
    with jax.enable_x64(True):
        return np.asarray(
            _map_lml(
                params, jnp.asarray(xs), jnp.asarray(ys), _as_pytree(kernel), jitter
            )
        )


# Data and kernel arrays are arguments, not closure constants (XLA would spend
# seconds constant-folding products with them).
@jax.jit
def _map_lml(params, xs, ys, kernel, jitter):
    one = lambda p: log_marginal_likelihood(kernel, p, xs, ys, jitter=jitter)
    return jax.lax.map(one, params)


@jax.jit
def _map_posterior(params, x, y, x_new, kernel, jitter):
    post = lambda p: gp_posterior(kernel, p, x, y, x_new, jitter=jitter)
    return jax.lax.map(post, params)


# ------------------------------------------------------------------ prediction
class GPPrediction(NamedTuple):
    """Posterior predictive summaries at new inputs, original units.

    Attributes:
        mean: ``[n*]`` posterior mean of ``f(x*)`` (= of ``y*``).
        sd_f: ``[n*]`` posterior sd of ``f(x*)``.
        sd_y: ``[n*]`` predictive sd of a new ``y*``.
        lower, upper: ``[n*]`` equal-tailed predictive interval of ``y*``.
        prob: its probability.
    """

    mean: np.ndarray
    sd_f: np.ndarray
    sd_y: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    prob: float


def _components(fit: GPFit, x_new) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per draw: standardised means ``[S, n*]``, f variances, y variances."""
    xa = check_x(x_new, "x_new", num_inputs=fit.x.shape[1])
    xs = fit.scaler.x(xa)
    with jax.enable_x64(True):
        mean, var_f = _map_posterior(
            jax.tree.map(jnp.asarray, fit.params),
            jnp.asarray(fit.x), jnp.asarray(fit.y), jnp.asarray(xs),
            _as_pytree(fit.kernel), fit.jitter,
        )  # fmt: skip
        mean, var_f = np.asarray(mean), np.asarray(var_f)
    var_y = var_f + np.asarray(fit.params.noise)[:, None] ** 2
    return mean, var_f, var_y


def _mixture_quantile(q, mean, sd, lo, hi, iterations=80):
    """Quantile ``q`` of an equal-weight normal mixture, per column, by bisection."""
    from scipy.special import ndtr

    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        below = ndtr((mid[None] - mean) / sd).mean(0) < q
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return 0.5 * (lo + hi)


def predict_gp(
    fit: GPFit, x_new: Float[ArrayLike, "m p"], *, prob: float = 0.9
) -> GPPrediction:
    """Posterior predictive at ``x_new`` in original units.

    For ML-II the predictive of ``y*`` is normal; for NUTS it is the equal-weight
    mixture over the draws (its quantiles by bisection, its sd by the law of
    total variance).
    """
    if not 0.0 < prob < 1.0:
        raise ValueError(f"prob: expected a value in (0, 1), got {prob}.")
    mean, var_f, var_y = _components(fit, x_new)
    centre = mean.mean(0)
    spread = mean.var(0)
    sd_f, sd_y = np.sqrt(var_f.mean(0) + spread), np.sqrt(var_y.mean(0) + spread)
    sd = np.sqrt(var_y)
    tail = (1.0 - prob) / 2
    width = 10.0 * sd.max(0)
    lo0, hi0 = mean.min(0) - width, mean.max(0) + width
    lower = _mixture_quantile(tail, mean, sd, lo0, hi0)
    upper = _mixture_quantile(1.0 - tail, mean, sd, lo0, hi0)
    sc = fit.scaler
    return GPPrediction(
        sc.y_inverse(centre), sc.y_scale * sd_f, sc.y_scale * sd_y,
        sc.y_inverse(lower), sc.y_inverse(upper), float(prob),
    )  # fmt: skip


def gp_log_predictive_density(
    fit: GPFit, x_new: Float[ArrayLike, "m p"], y_new: Float[ArrayLike, " m"]
) -> np.ndarray:
    r"""Pointwise held-out log predictive density ``[n*]`` in original units:
    :math:`\log \frac1S\sum_s N(y_* \mid \bar f_{*s}, V_s[f_*] + \sigma_s^2)`
    (``S = 1`` for ML-II), each point separately (not the joint density).
    """
    from scipy.special import logsumexp

    xa, ya = (
        check_x(x_new, "x_new", num_inputs=fit.x.shape[1]),
        np.asarray(y_new, float),
    )
    if ya.shape != (xa.shape[0],):
        raise ValueError(
            f"y_new: expected shape ({xa.shape[0]},) (one per row of x_new), got "
            f"{ya.shape}."
        )
    if not np.all(np.isfinite(ya)):
        raise ValueError("y_new: expected finite values, got NaN or inf.")
    mean, _, var_y = _components(fit, xa)
    z = fit.scaler.y(ya)[None]
    logpdf = -0.5 * ((z - mean) ** 2 / var_y + np.log(2 * np.pi * var_y))
    return (
        logsumexp(logpdf, axis=0) - np.log(mean.shape[0]) - np.log(fit.scaler.y_scale)
    )
