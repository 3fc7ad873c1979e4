"""The train state and the jit-compiled train/eval steps.

Conventions (written once, used by :func:`~jaxseq.train.fit`):

- ``loss_fn(params, batch, key) -> (loss, aux)``. ``loss`` is the scalar the
  gradient is taken of, a mean over the batch; ``aux`` is ``None`` or a dict of
  scalar batch means (accuracy, ...). ``key`` is a PRNG key for dropout during
  training and ``None`` during evaluation, so ``key is None`` means "no dropout".
- The step returns metrics as **sums plus a count**: ``loss`` and every ``aux``
  entry are multiplied by ``count`` (the batch size, or ``aux["count"]`` when the
  loss function reports how many items its mean was taken over), so means over an
  epoch are ``sum / count`` on the host (:func:`summarize`), however the batches
  were sized.
- The per-step key is ``jax.random.fold_in(state.key, state.step)``: the run's
  randomness is a function of its key and the step alone, which is what makes a
  resumed run identical to an uninterrupted one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._weakcache import weak_cache

LossFn = Callable[[Any, Any, jax.Array | None], tuple[jax.Array, Any]]
Metrics = dict[str, jax.Array]

#: Metrics that are not sums over examples: averaged over steps by summarize().
PER_STEP = ("grad_norm",)


class TrainState(NamedTuple):
    """Everything a training run carries from step to step, as one pytree.

    Attributes:
        step: int32 scalar, the number of updates applied so far (0-based count:
            the next update is number ``step``, and Optax schedules see it).
        params: the model parameters (any pytree).
        opt_state: the optimiser's state.
        key: the run's PRNG key. It is not split as training goes: step ``k``
            uses ``fold_in(key, k)``.
    """

    step: jax.Array
    params: Any
    opt_state: Any
    key: jax.Array


def check_key(key: Any) -> jax.Array:
    """``key`` if it is one typed PRNG key (``jax.random.key(seed)``, shape
    ``()``); a ``TypeError`` or ``ValueError`` naming ``key`` otherwise (a legacy
    raw ``uint32`` key is refused with the way to wrap it)."""
    expected = "a typed PRNG key from jax.random.key(seed)"
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(
                f"key: expected {expected} (shape ()), got a key array of shape "
                f"{key.shape}."
            )
        return key
    if hasattr(key, "dtype") and hasattr(key, "shape"):
        hint = ""
        if np.dtype(key.dtype) == np.uint32:
            hint = " (raw key data: wrap it with jax.random.wrap_key_data)"
        raise TypeError(
            f"key: expected {expected}, got an array of dtype {key.dtype} and "
            f"shape {tuple(key.shape)}{hint}."
        )
    raise TypeError(f"key: expected {expected}, got {type(key).__name__} {key!r}.")


def init_state(
    params: Any, optimizer: optax.GradientTransformation, key: jax.Array
) -> TrainState:
    """A fresh :class:`TrainState` at step 0.

    The parameters and the key are copied: the train step donates the state's
    buffers, and the caller's ``params`` and ``key`` must stay valid after training.

    Args:
        params: initial parameters.
        optimizer: an Optax transformation.
        key: the run's PRNG key (``jax.random.key(seed)``; see :func:`check_key`).
    """
    key = check_key(key)
    params = jax.tree.map(lambda x: jnp.array(x, copy=True), params)
    key = jax.random.wrap_key_data(
        jnp.array(jax.random.key_data(key), copy=True), impl=jax.random.key_impl(key)
    )
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        opt_state=optimizer.init(params),
        key=key,
    )


def _batch_size(batch: Any) -> int:
    leaves = jax.tree.leaves(batch)
    if not leaves or jnp.ndim(leaves[0]) == 0:
        raise ValueError(
            "batch: expected a pytree of arrays with a leading batch axis, got "
            f"{jax.tree.structure(batch)}."
        )
    return leaves[0].shape[0]


_FORM = "loss_fn(params, batch, key) -> (scalar loss, aux dict or None)"


def _describe(out: Any) -> str:
    if isinstance(out, (tuple, list)):
        return f"a {type(out).__name__} of {len(out)} values"
    if hasattr(out, "shape") and hasattr(out, "dtype"):
        return f"one array of shape {tuple(out.shape)} (no aux)"
    return f"{type(out).__name__}"


def checked_loss(loss_fn: LossFn) -> LossFn:
    """``loss_fn`` with its output checked at trace time: a pair ``(loss,
    aux)`` with a real scalar ``loss`` and ``aux`` ``None`` or a dict of
    scalars; otherwise a ``TypeError``/``ValueError`` naming ``loss_fn`` and
    the expected form."""

    @functools.wraps(loss_fn)
    def wrapped(params, batch, key):
        out = loss_fn(params, batch, key)
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise TypeError(f"loss_fn: expected {_FORM}, got {_describe(out)}.")
        loss, aux = out
        if not hasattr(loss, "dtype"):
            raise TypeError(
                f"loss_fn: expected {_FORM}, got a loss of type {type(loss).__name__}."
            )
        if jnp.ndim(loss) != 0:
            raise ValueError(
                f"loss_fn: expected {_FORM}, got a loss of shape "
                f"{jnp.shape(loss)} (reduce it to the batch mean)."
            )
        if not jnp.issubdtype(loss.dtype, jnp.floating):
            raise TypeError(
                f"loss_fn: expected {_FORM} with a floating loss, got dtype "
                f"{loss.dtype}."
            )
        if aux is not None and not isinstance(aux, Mapping):
            raise TypeError(
                f"loss_fn: expected {_FORM}, got aux of type {type(aux).__name__}."
            )
        for name, value in (aux or {}).items():
            if jnp.ndim(value) != 0:
                raise ValueError(
                    f"loss_fn: expected aux[{name!r}] to be a scalar batch mean, "
                    f"got shape {jnp.shape(value)}."
                )
        return loss, aux

    return wrapped


def _metric_sums(loss: jax.Array, aux: Any, batch: Any) -> Metrics:
    aux = dict(aux or {})
    count = aux.pop("count", None)
    if count is None:
        count = _batch_size(batch)
    count = jnp.asarray(count, jnp.float32)
    sums = {"loss": loss.astype(jnp.float32) * count}
    for name, value in aux.items():
        sums[name] = jnp.asarray(value, jnp.float32) * count
    sums["count"] = count
    return sums


def _all_finite(tree: Any) -> jax.Array:
    leaves = [jnp.isfinite(x).all() for x in jax.tree.leaves(tree)]
    return jnp.stack(leaves).all() if leaves else jnp.array(True)


def train_step_fn(
    loss_fn: LossFn, optimizer: optax.GradientTransformation
) -> Callable[[TrainState, Any], tuple[TrainState, Metrics]]:
    """The un-jitted train step (for composing under another transformation)."""

    loss_fn = checked_loss(loss_fn)

    def train_step(state: TrainState, batch: Any) -> tuple[TrainState, Metrics]:
        key = jax.random.fold_in(state.key, state.step)
        (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, batch, key
        )
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        finite = jnp.isfinite(loss) & _all_finite(grads)
        # A non-finite loss or gradient leaves the state as it was (no update, step
        # not advanced), so the caller still holds the last good state.
        keep = lambda n, o: jnp.where(finite, n, o)
        state = TrainState(
            step=keep(state.step + 1, state.step),
            params=jax.tree.map(keep, params, state.params),
            opt_state=jax.tree.map(keep, opt_state, state.opt_state),
            key=state.key,
        )
        metrics = _metric_sums(loss, aux, batch)
        metrics["grad_norm"] = optax.tree.norm(grads).astype(jnp.float32)
        metrics["finite"] = finite
        return state, metrics

    return train_step


def make_train_step(
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    *,
    donate: bool = True,
    state_sharding: Any = None,
    batch_sharding: Any = None,
) -> Callable[[TrainState, Any], tuple[TrainState, Metrics]]:
    """One jit-compiled update: loss, gradient, optimiser update.

    ``train_step(state, batch) -> (state, metrics)`` computes
    ``(loss, aux), grads = value_and_grad(loss_fn)(state.params, batch,
    fold_in(state.key, state.step))``, applies ``optimizer`` and advances
    ``state.step``. It is jitted once here (``state`` donated, so parameters are
    updated in place); it compiles once per batch shape, so pad sequences to a few
    bucket lengths (:func:`~jaxseq.train.bucket_by_length`). The same
    ``(loss_fn, optimizer, donate, shardings)`` returns the same jitted function
    (a cache that holds ``loss_fn`` weakly: it keeps nothing alive once the
    caller drops ``loss_fn`` and the step), so a second
    :func:`~jaxseq.train.fit` does not recompile.

    If the loss or any gradient entry is not finite, the returned state is the
    input state unchanged and ``metrics["finite"]`` is ``False``;
    :func:`~jaxseq.train.fit` stops there and names the step.

    Args:
        loss_fn: ``loss_fn(params, batch, key) -> (loss, aux)`` (see the module
            docstring for ``aux``).
        optimizer: any ``optax.GradientTransformation`` (clip, ridge and the
            optimiser chained with ``optax.chain``).
        donate: donate the input state's buffers to the output.
        state_sharding, batch_sharding: optional ``jax.sharding.Sharding`` (or
            pytree prefixes) for data parallelism; see
            :func:`~jaxseq.train.data_parallel`. ``None`` leaves placement to JAX.

    Returns:
        ``train_step(state, batch) -> (state, metrics)``; ``metrics`` holds sums
        (``loss``, ``aux`` entries), ``count``, ``grad_norm`` and ``finite``.

    Examples:
        >>> import jax, jax.numpy as jnp, optax
        >>> from jaxseq.train import init_state, make_train_step
        >>> def loss_fn(w, batch, key):
        ...     x, y = batch
        ...     return jnp.mean((x @ w - y) ** 2), None
        >>> opt = optax.sgd(0.1)
        >>> step = make_train_step(loss_fn, opt)
        >>> state = init_state(jnp.zeros(2), opt, jax.random.key(0))
        >>> x = jnp.array([[1.0, 0.0], [0.0, 1.0]]); y = jnp.array([1.0, -1.0])
        >>> state, metrics = step(state, (x, y))
        >>> int(state.step), float(metrics["count"]), state.params.tolist()
        (1, 2.0, [0.10000000149011612, -0.10000000149011612])
    """
    return _cached_train_step(
        loss_fn, optimizer, bool(donate), state_sharding, batch_sharding
    )


def _jit_train_step(loss_fn, optimizer, donate, state_sharding, batch_sharding):
    fn = train_step_fn(loss_fn, optimizer)
    kwargs: dict[str, Any] = {"donate_argnums": (0,) if donate else ()}
    if state_sharding is not None or batch_sharding is not None:
        kwargs["in_shardings"] = (state_sharding, batch_sharding)
        kwargs["out_shardings"] = (state_sharding, state_sharding)
    return jax.jit(fn, **kwargs)


# The same live loss_fn with equal (optimizer, shardings) gives the same jitted
# function, so calling fit() again (resuming, a notebook re-run) reuses its
# compiled steps; the cache holds loss_fn weakly (and what it closes over).
_cached_train_step = weak_cache(_jit_train_step)


def make_eval_step(
    loss_fn: LossFn, *, params_sharding: Any = None, batch_sharding: Any = None
) -> Callable[[Any, Any], Metrics]:
    """A jit-compiled evaluation: ``eval_step(params, batch) -> metrics``.

    Calls ``loss_fn(params, batch, None)`` (``key=None``: no dropout) and returns
    the same sums-plus-count metrics as the train step (without ``grad_norm``).
    """
    return _cached_eval_step(loss_fn, params_sharding, batch_sharding)


def _jit_eval_step(loss_fn, params_sharding, batch_sharding):
    loss_fn = checked_loss(loss_fn)

    def eval_step(params: Any, batch: Any) -> Metrics:
        loss, aux = loss_fn(params, batch, None)
        return _metric_sums(loss, aux, batch)

    if params_sharding is not None or batch_sharding is not None:
        return jax.jit(
            eval_step,
            in_shardings=(params_sharding, batch_sharding),
            out_shardings=params_sharding,
        )
    return jax.jit(eval_step)


_cached_eval_step = weak_cache(_jit_eval_step)


def accumulate(
    totals: dict[str, float], metrics: Mapping[str, Any]
) -> dict[str, float]:
    """Add one step's metrics (device arrays) into host totals (Python floats).

    ``finite`` is dropped; ``grad_norm`` is summed with a ``steps`` count so that
    :func:`summarize` reports its mean over steps.
    """
    out = dict(totals)
    for name, value in metrics.items():
        if name == "finite":
            continue
        out[name] = out.get(name, 0.0) + float(value)
    out["steps"] = out.get("steps", 0.0) + 1.0
    return out


def summarize(totals: Mapping[str, float]) -> dict[str, float]:
    """Means from :func:`accumulate`'s totals: sums over ``count``, per-step
    metrics over ``steps``."""
    count = totals.get("count", 0.0)
    steps = totals.get("steps", 0.0)
    out = {}
    for name, value in totals.items():
        if name in ("count", "steps"):
            continue
        denom = steps if name in PER_STEP else count
        out[name] = value / denom if denom else float("nan")
    return out
