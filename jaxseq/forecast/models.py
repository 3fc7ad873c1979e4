r"""Forecasters on any jaxseq cell or stacked layer: three multi-step strategies.

Position ``k`` of a window reads ``x_k = [z_k, cov_k]`` (:mod:`.windows`); the
recurrent layer's output ``h_k`` feeds a dense readout to the head's ``K``
outputs (:mod:`.heads`).

* ``"recursive"``: one-step model ``p(z_{k+1} | z_{<=k})`` at every position,
  trained with teacher forcing on the whole window (positions ``k >= W // 2``
  count in the loss). Forecasts feed the point forecast back (the plug-in path)
  or, for sample paths, a draw from the head (which must be able to sample).
* ``"direct"``: the last output ``h_{W-1}`` reads out all ``H`` steps at once
  (``H * K`` outputs; multi-output). With ``linear = p > 0`` a linear
  autoregressive "highway" beside the net (LSTNet, Lai et al. 2018) adds
  ``z_{W-p:W} @ A`` (``A`` ``[p, H * K]``, initialised to 0) to those outputs:
  the mean of step ``h`` is ``readout(h_{W-1}) + sum_j A[p-j, h] z_{W-j}``, an
  AR(p) the net can fall back to on short, noisy series.
* ``"seq2seq"``: an encoder reads the window; a decoder of the same cells,
  started from the encoder's final carries, reads ``[cov_{W-1+h}, onehot(h)]``
  for ``h = 0..H-1`` and each of its outputs reads out one step.

At horizon 1 the recursive and the direct strategies compute the same function
of the window: ``readout(h_{W-1})`` (tests/forecast/test_models.py).
Every function is pure; :class:`Forecaster`'s ``outputs`` and ``paths`` come
jit-compiled; ``loss`` has the signature :func:`jaxseq.train.fit` expects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ..cells import Cell
from ..layers import RNNLayer, stack
from .heads import Head, gaussian
from .windows import check_sizes

__all__ = ["STRATEGIES", "Forecaster", "forecaster", "member", "stacked"]

STRATEGIES = ("recursive", "direct", "seq2seq")
_GLOROT = jax.nn.initializers.glorot_uniform()


class Forecaster(NamedTuple):
    """A forecasting model as pure functions.

    Attributes:
        init: ``init(key) -> params``.
        loss: ``loss(params, (z [B, W+H], cov [B, W+H-1, C]), key) -> (loss, aux)``;
            ``key=None`` turns dropout off.
        outputs: jitted ``outputs(params, z [B, W], cov) -> o [B, H, K]``, the
            head's raw outputs per step (recursive: along the plug-in path).
        paths: jitted ``paths(params, z, cov, key, num_samples) -> [B, S, H]``
            sample paths (standardised), or ``None`` when the head cannot sample.
            Recursive: draws fed back (joint paths); direct and seq2seq:
            independent draws from each step's marginal.
        strategy, head, layer, window, horizon, num_covariates: the configuration.
    """

    init: Callable[[jax.Array], Any]
    loss: Callable[..., tuple[jax.Array, dict[str, jax.Array]]]
    outputs: Callable[..., jax.Array]
    paths: Callable[..., jax.Array] | None
    strategy: str
    head: Head
    layer: RNNLayer
    window: int
    horizon: int
    num_covariates: int


def _readout_init(key, size_in, size_out):
    return {"w": _GLOROT(key, (size_in, size_out)), "b": jnp.zeros((size_out,))}


def _readout(p, h):
    return h @ p["w"] + p["b"]


def _inputs(z, cov):
    """``[B, L]`` values and ``[B, >=L, C]`` covariates -> ``[B, L, 1 + C]``;
    a missing value (NaN) reads as 0."""
    z = jnp.where(jnp.isnan(z), 0.0, z)
    return jnp.concatenate([z[..., None], cov[:, : z.shape[1]]], axis=-1)


def _layer(cell, num_layers, dropout) -> RNNLayer:
    if isinstance(cell, RNNLayer):
        return cell
    if isinstance(cell, Cell):
        return stack(cell, num_layers, dropout=dropout)
    raise TypeError(
        f"cell: expected a jaxseq Cell or an RNNLayer (jaxseq.stack), got "
        f"{type(cell).__name__}."
    )


def forecaster(
    cell: Cell | RNNLayer,
    *,
    window: int,
    horizon: int,
    strategy: str = "recursive",
    head: Head | None = None,
    num_covariates: int = 0,
    num_layers: int = 1,
    dropout: float = 0.0,
    linear: int = 0,
) -> Forecaster:
    """Build a forecaster.

    Args:
        cell: any jaxseq cell (stacked ``num_layers`` deep with ``dropout``
            between layers), or a ready :class:`~jaxseq.layers.RNNLayer`.
        window: ``W`` observed steps read. horizon: ``H`` steps forecast.
        strategy: ``"recursive"``, ``"direct"`` or ``"seq2seq"``.
        head: :func:`~jaxseq.forecast.heads.gaussian` (default),
            :func:`~jaxseq.forecast.heads.student_t` or
            :func:`~jaxseq.forecast.heads.quantile`.
        num_covariates: ``C``, covariates per step.
        linear: ``p``, the last inputs read by the linear autoregressive
            highway of the direct strategy (``0``: none; ``<= window``).

    Raises:
        ValueError: an unknown strategy; a recursive forecaster with ``H > 1``
            and a head that cannot sample, or with a layer that does not run
            forwards in time (bidirectional or reversed); a seq2seq forecaster
            with such a layer.
    """
    window, horizon = check_sizes(window, horizon)
    head = gaussian() if head is None else head
    layer = _layer(cell, num_layers, dropout)
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy: expected one of {STRATEGIES}, got {strategy!r}.")
    if strategy != "direct" and (layer.bidirectional or layer.reverse):
        raise ValueError(
            f"cell: the {strategy} strategy runs forwards in time; expected a "
            f"unidirectional, forward layer, got bidirectional={layer.bidirectional}, "
            f"reverse={layer.reverse}. Use strategy='direct'."
        )
    if strategy == "recursive" and horizon > 1 and head.sample is None:
        raise ValueError(
            f"head: a recursive forecast over horizon {horizon} needs a head that "
            f"can sample its paths (gaussian() or student_t()), got {head.name!r}."
        )
    if (
        isinstance(num_covariates, bool)
        or not isinstance(num_covariates, int)
        or (num_covariates < 0)
    ):
        raise ValueError(
            f"num_covariates: expected an int >= 0, got {num_covariates!r}."
        )
    if (
        isinstance(linear, bool)
        or not isinstance(linear, int)
        or not 0 <= linear <= window
    ):
        raise ValueError(
            f"linear: expected an int in [0, window] = [0, {window}], got {linear!r}."
        )
    if linear and strategy != "direct":
        raise ValueError(
            f"linear: the autoregressive highway serves the direct strategy; "
            f"expected linear=0 with strategy={strategy!r}, got {linear}."
        )
    if strategy == "direct":
        return _direct(layer, head, window, horizon, num_covariates, linear)
    build = {"recursive": _recursive, "seq2seq": _seq2seq}
    return build[strategy](layer, head, window, horizon, num_covariates)


def _mean_loss(head, o, targets):
    """The head's loss and the absolute error, averaged over observed targets
    (missing ones, NaN, are masked out; an all-missing batch gives 0)."""
    seen = ~jnp.isnan(targets)
    targets = jnp.where(seen, targets, 0.0)
    count = jnp.maximum(jnp.sum(seen), 1)
    mean = lambda v: jnp.sum(jnp.where(seen, v, 0.0)) / count
    loss = mean(head.loss(o, targets))
    return loss, {"mae": mean(jnp.abs(head.point(o) - targets))}


def _recursive(layer, head, window, horizon, num_cov):
    burn = window // 2

    def init(key):
        k1, k2 = jax.random.split(key)
        return {
            "rnn": layer.init(k1, 1 + num_cov),
            "out": _readout_init(k2, layer.output_size, head.size),
        }

    def loss(params, batch, key):
        z, cov = batch
        _, ys = layer.apply(params["rnn"], _inputs(z[:, :-1], cov), key=key)
        o = _readout(params["out"], ys[:, burn:])
        return _mean_loss(head, o, z[:, burn + 1 :])

    def advance(params, carries, value, cov_h):
        x = jnp.concatenate([value[:, None], cov_h], axis=-1)[:, None, :]
        carries, ys = layer.apply(params["rnn"], x, carry0=carries)
        return carries, _readout(params["out"], ys[:, 0])

    def encode(params, z, cov):
        carries, ys = layer.apply(params["rnn"], _inputs(z, cov))
        return carries, _readout(params["out"], ys[:, -1])

    def unfold(params, carries, o, cov, keys, draw):
        def body(state, h):
            carries, o = state
            value = draw(keys[h], o)
            # the last step's successor is never used: clamp its covariate index
            k = jnp.minimum(window + h, window + horizon - 2)
            carries, o_next = advance(params, carries, value, cov[:, k])
            return (carries, o_next), (o, value)

        return jax.lax.scan(body, (carries, o), jnp.arange(horizon))[1]

    def outputs(params, z, cov):
        carries, o = encode(params, z, cov)
        keys = jnp.zeros((horizon,), jnp.uint32)  # unused by the point forecast
        os, _ = unfold(params, carries, o, cov, keys, lambda _, o: head.point(o))
        return jnp.moveaxis(os, 0, 1)

    def paths(params, z, cov, key, num_samples):
        carries, o = encode(params, z, cov)
        tile = lambda a: jnp.repeat(a, num_samples, axis=0)
        carries, o, cov = jax.tree.map(tile, carries), tile(o), tile(cov)
        keys = jax.random.split(key, horizon)
        _, values = unfold(params, carries, o, cov, keys, head.sample)
        return values.T.reshape(z.shape[0], num_samples, horizon)

    return _bundle(
        init, loss, outputs, paths, "recursive", layer, head, window, horizon, num_cov
    )


def _marginal_paths(outputs, head):
    def paths(params, z, cov, key, num_samples):
        o = outputs(params, z, cov)[:, None]  # [B, 1, H, K]
        o = jnp.broadcast_to(o, (o.shape[0], num_samples) + o.shape[2:])
        return head.sample(key, o)

    return paths


def _direct(layer, head, window, horizon, num_cov, linear=0):
    def init(key):
        k1, k2 = jax.random.split(key)
        params = {
            "rnn": layer.init(k1, 1 + num_cov),
            "out": _readout_init(k2, layer.output_size, horizon * head.size),
        }
        if linear:
            params["ar"] = jnp.zeros((linear, horizon * head.size))
        return params

    def forward(params, z, cov, key):
        _, ys = layer.apply(params["rnn"], _inputs(z[:, :window], cov), key=key)
        o = _readout(params["out"], ys[:, -1])
        if linear:
            last = z[:, window - linear : window]
            o = o + jnp.where(jnp.isnan(last), 0.0, last) @ params["ar"]
        return o.reshape(z.shape[0], horizon, head.size)

    def loss(params, batch, key):
        z, cov = batch
        return _mean_loss(head, forward(params, z, cov, key), z[:, window:])

    outputs = lambda params, z, cov: forward(params, z, cov, None)
    return _bundle(
        init,
        loss,
        outputs,
        _marginal_paths(outputs, head),
        "direct",
        layer,
        head,
        window,
        horizon,
        num_cov,
    )


def _seq2seq(layer, head, window, horizon, num_cov):
    decoder = stack(layer.cells, dropout=layer.dropout)

    def init(key):
        k1, k2, k3 = jax.random.split(key, 3)
        return {
            "enc": layer.init(k1, 1 + num_cov),
            "dec": decoder.init(k2, num_cov + horizon),
            "out": _readout_init(k3, decoder.output_size, head.size),
        }

    def forward(params, z, cov, key):
        k_enc, k_dec = (None, None) if key is None else jax.random.split(key)
        carries, _ = layer.apply(params["enc"], _inputs(z[:, :window], cov), key=k_enc)
        steps = jnp.broadcast_to(jnp.eye(horizon), (z.shape[0], horizon, horizon))
        x = jnp.concatenate([cov[:, window - 1 : window - 1 + horizon], steps], -1)
        _, ys = decoder.apply(params["dec"], x, carry0=carries, key=k_dec)
        return _readout(params["out"], ys)

    def loss(params, batch, key):
        z, cov = batch
        return _mean_loss(head, forward(params, z, cov, key), z[:, window:])

    outputs = lambda params, z, cov: forward(params, z, cov, None)
    return _bundle(
        init,
        loss,
        outputs,
        _marginal_paths(outputs, head),
        "seq2seq",
        layer,
        head,
        window,
        horizon,
        num_cov,
    )


def _bundle(
    init, loss, outputs, paths, strategy, layer, head, window, horizon, num_cov
) -> Forecaster:
    jitted_paths = None
    if head.sample is not None:
        jitted_paths = jax.jit(paths, static_argnames="num_samples")
    return Forecaster(
        init,
        loss,
        jax.jit(outputs),
        jitted_paths,
        strategy,
        head,
        layer,
        window,
        horizon,
        num_cov,
    )


def stacked(model: Forecaster, members: int) -> Forecaster:
    """``members`` copies of ``model`` trained as one program (an ensemble over
    seeds, vmapped: one compilation and one batched step for all of them).

    ``init(key)`` draws each member's parameters from its own key
    (``jax.random.split(key, members)``), stacked on a leading axis ``[K, ...]``;
    ``loss`` is the mean of the members' losses on the same batch (each with
    its own dropout key), so each member's gradient is its own loss's divided
    by ``K`` (Adam's steps do not depend on that scale; a clip of the global
    gradient norm, as :func:`~jaxseq.forecast.train` applies, sees all members'
    gradients together); ``outputs(params, z,
    cov) -> [K, B, H, size]``. :func:`member` takes one member's parameters
    out for :func:`~jaxseq.forecast.predict` with ``model``. ``paths`` is
    ``None``.
    """
    if isinstance(members, bool) or not isinstance(members, int) or members < 1:
        raise ValueError(f"members: expected a positive int, got {members!r}.")

    def init(key):
        return jax.vmap(model.init)(jax.random.split(key, members))

    def loss(params, batch, key):
        if key is None:
            losses, aux = jax.vmap(model.loss, (0, None, None))(params, batch, None)
        else:
            keys = jax.random.split(key, members)
            losses, aux = jax.vmap(model.loss, (0, None, 0))(params, batch, keys)
        return jnp.mean(losses), jax.tree.map(jnp.mean, aux)

    outputs = jax.jit(jax.vmap(model.outputs, (0, None, None)))
    return model._replace(init=init, loss=loss, outputs=outputs, paths=None)


def member(params: Any, k: int) -> Any:
    """Member ``k``'s parameters of a :func:`stacked` model's ``params``."""
    return jax.tree.map(lambda a: a[k], params)
