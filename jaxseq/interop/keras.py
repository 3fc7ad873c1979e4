"""Weight exchange with Keras 3 ``LSTM``, ``GRU``, ``SimpleRNN`` and ``Bidirectional``.

jaxseq never imports keras here: weights are read with ``layer.get_weights()`` and
written with ``layer.set_weights(...)`` as NumPy arrays, and a layer's options come
from ``layer.get_config()``. Layouts (Keras multiplies on the right, as jaxseq):

- ``LSTM``: ``[kernel [F, 4H], recurrent_kernel [H, 4H], bias [4H]]``, gates
  ``i f c o``, the same order as jaxseq: copied as they are. Keras'
  ``unit_forget_bias`` is an initialiser, so it only sets the imported cell's
  ``forget_bias`` option (used by a later ``init``), never the weights.
- ``GRU``: Keras stores the gates ``z r h``; jaxseq ``r z n``, so the first two
  blocks swap on the way in and out. With ``reset_after=True`` (the Keras default)
  the bias is ``[2, 3H]``: row 0 the input bias (jaxseq ``b_x``), row 1 the
  recurrent bias (``b_h``). With ``reset_after=False`` (the seed's form) the bias is
  ``[3H]`` and every bias adds to a pre-activation, so jaxseq keeps it in ``b_x``
  and exports ``b_x + b_h``.
- ``SimpleRNN``: ``[kernel [F, H], recurrent_kernel [H, H], bias [H]]``; the
  activations ``tanh``, ``relu``, ``sigmoid`` and ``linear`` (jaxseq ``identity``).
- ``Bidirectional``: the forward layer's weights, then the backward layer's; merge
  modes ``concat`` and ``sum``.
- A stack is a list of such layers (or a model: its consecutive recurrent layers).

``go_backwards=True`` becomes ``reverse=True``. The two agree on the computation
but not on the output order: with ``return_sequences=True`` Keras returns the
outputs in processing order (``ys_keras[:, 0]`` belongs to the last time step),
whereas jaxseq keeps them aligned with the input, so for full-length sequences
``ys_keras == ys[:, ::-1]``. ``Bidirectional`` flips its backward outputs back, as
jaxseq does. A Keras mask (right padding) corresponds to ``lengths``.

Keras' ``dropout`` and ``recurrent_dropout`` act only in training and are not
carried over; inference outputs agree.

Example (keras is not a jaxseq dependency, so this is not a doctest; the same
round trip runs in ``tests/interop/test_keras.py``)::

    layer, params = from_keras(model)          # a keras.layers.LSTM, a list, a model
    carries, ys = layer.apply(params, xs, lengths=lengths)
    to_keras(layer, params, model)             # writes the weights back in place
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np

from ..cells import Cell, ElmanParams, GRUParams, LSTMParams, elman, gru, lstm
from ..layers import BiParams, RNNLayer, stack

_RECURRENT = ("LSTM", "GRU", "SimpleRNN")
_KIND_OF_CELL = {"lstm": "LSTM", "gru": "GRU", "elman": "SimpleRNN"}
#: SimpleRNN activation -> jaxseq elman activation.
_ELMAN_FROM_KERAS = {
    "tanh": "tanh",
    "relu": "relu",
    "sigmoid": "sigmoid",
    "linear": "identity",
}
_ELMAN_TO_KERAS = {v: k for k, v in _ELMAN_FROM_KERAS.items()}
_MERGES = ("concat", "sum")


class _Spec(NamedTuple):
    """What jaxseq needs to know about one Keras recurrent layer."""

    kind: str  # "LSTM", "GRU" or "SimpleRNN"
    units: int
    config: dict[str, Any]
    name: str


def _class_names(obj: Any) -> set[str]:
    return {c.__name__ for c in type(obj).__mro__}


def _is_recurrent(obj: Any) -> bool:
    names = _class_names(obj)
    return "Bidirectional" in names or any(k in names for k in _RECURRENT)


def _spec(layer: Any) -> _Spec:
    names = _class_names(layer)
    kind = next((k for k in _RECURRENT if k in names), None)
    if kind is None:
        raise TypeError(
            "layer: expected a keras.layers.LSTM, GRU, SimpleRNN or Bidirectional, "
            f"got {type(layer).__name__}."
        )
    config = dict(layer.get_config())
    return _Spec(kind, int(config["units"]), config, str(config.get("name", kind)))


def _keras_layers(obj: Any) -> list[Any]:
    """The recurrent layers of a layer, a list of layers or a model, in order."""
    if _is_recurrent(obj):
        return [obj]
    items = list(obj.layers) if hasattr(obj, "layers") else list(obj)
    flags = [_is_recurrent(x) for x in items]
    if not any(flags):
        raise ValueError(
            "layers: expected Keras LSTM, GRU, SimpleRNN or Bidirectional layers, "
            f"got {[type(x).__name__ for x in items]}."
        )
    first = flags.index(True)
    last = len(flags) - flags[::-1].index(True)
    if not all(flags[first:last]):
        between = [type(x).__name__ for x in items[first:last] if not _is_recurrent(x)]
        raise ValueError(
            "layers: expected the recurrent layers to be consecutive (a stack), got "
            f"{between} between them. Convert each run of recurrent layers "
            "separately."
        )
    return items[first:last]


def _cell(spec: _Spec, dtype: Any) -> Cell:
    cfg, where = spec.config, f"Keras layer {spec.name!r}"
    if spec.kind == "SimpleRNN":
        act = cfg.get("activation")
        if act not in _ELMAN_FROM_KERAS:
            raise ValueError(
                f"{where}: expected activation in {sorted(_ELMAN_FROM_KERAS)}, got "
                f"{act!r}."
            )
        return elman(spec.units, activation=_ELMAN_FROM_KERAS[act], dtype=dtype)
    got = (cfg.get("activation"), cfg.get("recurrent_activation"))
    if got != ("tanh", "sigmoid"):
        raise ValueError(
            f"{where}: expected activation 'tanh' and recurrent_activation "
            f"'sigmoid' (the {spec.kind} jaxseq computes), got {got}."
        )
    if spec.kind == "LSTM":
        forget = 1.0 if cfg.get("unit_forget_bias", True) else 0.0
        return lstm(spec.units, forget_bias=forget, dtype=dtype)
    return gru(spec.units, reset_after=bool(cfg.get("reset_after", True)), dtype=dtype)


def _swap_rz(a: np.ndarray) -> np.ndarray:
    """Keras ``z r h`` <-> jaxseq ``r z n`` along the last axis (self-inverse)."""
    first, second, third = np.split(a, 3, axis=-1)
    return np.concatenate([second, first, third], axis=-1)


def _params(spec: _Spec, weights: list[np.ndarray], input_size: int, dtype: Any):
    """jaxseq parameters of one direction from its Keras weight list."""
    h = spec.units
    g = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}[spec.kind] * h
    reset_after = spec.kind == "GRU" and bool(spec.config.get("reset_after", True))
    shapes = [(input_size, g), (h, g)]
    if spec.config.get("use_bias", True):
        shapes.append((2, g) if reset_after else (g,))
    _check_shapes(f"Keras layer {spec.name!r}", [a.shape for a in weights], shapes)
    # the source's own precision (a float64 Keras layer stays float64 until the
    # one cast to ``dtype``)
    w = [_float_array(a) for a in weights]
    bias = (
        w[2] if len(w) == 3 else np.zeros((2, g) if reset_after else (g,), w[0].dtype)
    )

    def a(x: np.ndarray) -> Any:
        return jnp.asarray(x, dtype)

    if spec.kind == "LSTM":
        return LSTMParams(w_x=a(w[0]), w_h=a(w[1]), b=a(bias))
    if spec.kind == "SimpleRNN":
        return ElmanParams(w_x=a(w[0]), w_h=a(w[1]), b=a(bias))
    b_x, b_h = (bias[0], bias[1]) if reset_after else (bias, np.zeros_like(bias))
    return GRUParams(
        w_x=a(_swap_rz(w[0])),
        w_h=a(_swap_rz(w[1])),
        b_x=a(_swap_rz(b_x)),
        b_h=a(_swap_rz(b_h)),
    )


def _float_array(a: Any) -> np.ndarray:
    a = np.asarray(a)
    return a if np.issubdtype(a.dtype, np.floating) else a.astype(np.float32)


def _check_shapes(where: str, got: list[tuple[int, ...]], expected: list) -> None:
    got = [tuple(s) for s in got]
    expected = [tuple(s) for s in expected]
    if got != expected:
        raise ValueError(
            f"{where}: expected weight shapes {expected}, got {got}."
            + (" Build the Keras layer first (call it once)." if not got else "")
        )


def _directions(layer: Any) -> tuple[list[_Spec], str | None]:
    """The direction specs of one Keras layer and its merge mode (``None`` when
    unidirectional)."""
    if "Bidirectional" not in _class_names(layer):
        return [_spec(layer)], None
    fw, bw = _spec(layer.forward_layer), _spec(layer.backward_layer)
    if fw.config.get("go_backwards"):
        raise ValueError(
            f"Keras layer {layer.name!r}: expected a forward layer with "
            "go_backwards=False inside Bidirectional, got True."
        )
    if _cell_key(fw) != _cell_key(bw):
        raise ValueError(
            f"Keras layer {layer.name!r}: expected the same kind, units and "
            f"activations in both directions, got {_cell_key(fw)} and {_cell_key(bw)}."
        )
    merge = layer.merge_mode
    if merge not in _MERGES:
        raise ValueError(
            f"Keras layer {layer.name!r}: expected merge_mode in {_MERGES}, got "
            f"{merge!r}."
        )
    return [fw, bw], merge


def _cell_key(spec: _Spec) -> tuple[Any, ...]:
    c = spec.config
    extra = c.get("reset_after") if spec.kind == "GRU" else None
    return spec.kind, spec.units, c.get("activation"), extra


def from_keras(obj: Any, *, dtype: Any = jnp.float32) -> tuple[RNNLayer, Any]:
    """A jaxseq layer and its parameters equal to Keras recurrent layers.

    Args:
        obj: a built ``keras.layers.LSTM``, ``GRU``, ``SimpleRNN`` or
            ``Bidirectional`` (of one of those); a list of them (a stack, each
            feeding the next); or a model, whose consecutive recurrent layers are
            taken (its other layers, e.g. ``Embedding`` or ``Dense``, are left to
            the caller).
        dtype: parameter dtype.

    Returns:
        ``(layer, params)`` for :meth:`RNNLayer.apply`, computing what the Keras
        layers compute at inference (outputs aligned with the input; see the
        module notes on ``go_backwards``).

    Raises:
        ValueError: for what :class:`RNNLayer` cannot express: activations other
            than Keras' defaults (``SimpleRNN``: tanh, relu, sigmoid, linear),
            ``merge_mode`` other than concat/sum, a mix of unidirectional and
            bidirectional layers, ``go_backwards`` in a stack of more than one
            layer (Keras then feeds each layer the reversed outputs of the last),
            or unbuilt layers.
    """
    layers = _keras_layers(obj)
    specs, merges = zip(*(_directions(x) for x in layers), strict=True)
    merge = merges[0]
    if any(m != merge for m in merges):
        raise ValueError(
            "layers: expected all unidirectional or all Bidirectional with one "
            f"merge_mode, got merge modes {list(merges)} (None: unidirectional)."
        )
    backwards = [bool(s[0].config.get("go_backwards")) for s in specs]
    if any(backwards) and (len(layers) > 1):
        raise ValueError(
            "layers: go_backwards=True is supported for a single Keras layer; in a "
            "stack Keras feeds each layer the previous one's reversed-order outputs, "
            "which a jaxseq stack (outputs aligned with the input) does not do."
        )
    cells, params = [], []
    for layer, dirs in zip(layers, specs, strict=True):
        cell = _cell(dirs[0], dtype)
        weights = [np.asarray(w) for w in layer.get_weights()]
        size = _input_size(weights, dirs[0])
        per = len(weights) // len(dirs)
        p = [
            _params(s, weights[i * per : (i + 1) * per], size, dtype)
            for i, s in enumerate(dirs)
        ]
        params.append(BiParams(*p) if merge else p[0])
        cells.append(cell)
    rnn_layer = stack(
        cells,
        bidirectional=merge is not None,
        merge=merge or "concat",
        reverse=backwards[0],
    )
    return rnn_layer, tuple(params)


def _input_size(weights: list[np.ndarray], spec: _Spec) -> int:
    if not weights:
        raise ValueError(
            f"Keras layer {spec.name!r}: expected built weights, got none. Build "
            "the Keras layer first (call it once on an input)."
        )
    return int(weights[0].shape[0])


def _direction_arrays(cell: Cell, p: Any) -> list[np.ndarray]:
    """One direction's Keras weight list (with bias) for jaxseq parameters."""

    def n(x: Any) -> np.ndarray:
        return np.array(x, np.float32)

    if cell.name == "lstm":
        return [n(p.w_x), n(p.w_h), n(p.b)]
    if cell.name == "elman":
        if cell.option("activation") not in _ELMAN_TO_KERAS:
            raise ValueError(
                f"layer: SimpleRNN supports activations {sorted(_ELMAN_TO_KERAS)}, "
                f"got {cell.option('activation')!r}."
            )
        return [n(p.w_x), n(p.w_h), n(p.b)]
    if cell.name != "gru":
        raise ValueError(
            f"layer: expected lstm, gru or elman cells, got {cell.name!r}."
        )
    w = [_swap_rz(n(p.w_x)), _swap_rz(n(p.w_h))]
    if cell.option("reset_after"):
        return [*w, np.stack([_swap_rz(n(p.b_x)), _swap_rz(n(p.b_h))])]
    # the two biases add in the parameters' precision, rounded to float32 once
    return [*w, _swap_rz(n(jnp.asarray(p.b_x) + jnp.asarray(p.b_h)))]


def keras_weights(layer: RNNLayer, params: Sequence[Any]) -> list[list[np.ndarray]]:
    """Keras weight lists (float32 NumPy) for jaxseq layer parameters.

    One list per jaxseq layer, ready for ``set_weights`` on a Keras layer with
    ``use_bias=True`` and the matching options (for a bidirectional layer: the
    forward weights, then the backward ones, as ``Bidirectional`` expects).
    """
    out = []
    for cell, p in zip(layer.cells, params, strict=True):
        if layer.bidirectional:
            out.append(_direction_arrays(cell, p.fw) + _direction_arrays(cell, p.bw))
        else:
            out.append(_direction_arrays(cell, p))
    return out


def _check_target(cell: Cell, rnn_layer: RNNLayer, target: Any) -> None:
    """Refuse a Keras layer whose options would compute something else."""
    specs, merge = _directions(target)
    spec = specs[0]
    want = _KIND_OF_CELL.get(cell.name)
    where = f"target {spec.name!r}"
    if spec.kind != want or spec.units != cell.hidden_size:
        raise ValueError(
            f"{where}: expected a Keras {want} with units={cell.hidden_size}, got "
            f"{spec.kind} with units={spec.units}."
        )
    expected = _cell(spec, jnp.float32)  # also checks the activations
    for key in ("reset_after", "activation"):
        if expected.option(key) != cell.option(key):
            raise ValueError(
                f"{where}: expected {key}={cell.option(key)!r} (the jaxseq cell), "
                f"got {expected.option(key)!r}."
            )
    want_merge = rnn_layer.merge if rnn_layer.bidirectional else None
    if merge != want_merge:
        raise ValueError(
            f"{where}: expected merge_mode={want_merge!r} (None: unidirectional, "
            f"else Bidirectional), got {merge!r}."
        )
    if merge is None and bool(spec.config.get("go_backwards")) != rnn_layer.reverse:
        raise ValueError(
            f"{where}: expected go_backwards={rnn_layer.reverse} (the layer's "
            f"reverse), got {spec.config.get('go_backwards')}."
        )


def to_keras(layer: RNNLayer, params: Sequence[Any], target: Any) -> Any:
    """Write jaxseq layer parameters into built Keras recurrent layers, in place.

    Args:
        layer: the jaxseq layer (its cells and options are checked against the
            Keras layers': kind, units, activations, GRU ``reset_after``,
            bidirectional merge mode, ``go_backwards`` vs ``reverse``).
        params: its parameters.
        target: a built Keras recurrent or ``Bidirectional`` layer, a list of them,
            or a model (its consecutive recurrent layers), one per jaxseq layer.
            A Keras layer with ``use_bias=False`` takes the weights only if the
            jaxseq biases are all zero.

    Returns:
        ``target``, with its weights set.

    Raises:
        ValueError: naming the Keras layer, when its options or weight shapes do
            not match.
    """
    targets = _keras_layers(target)
    if len(targets) != len(layer.cells):
        raise ValueError(
            f"target: expected {len(layer.cells)} Keras recurrent layers (one per "
            f"jaxseq layer), got {len(targets)}."
        )
    if layer.reverse and len(targets) > 1:
        raise ValueError(
            "layer: reverse=True with more than one layer has no Keras equivalent "
            "(a stack of go_backwards layers reverses the order between layers)."
        )
    staged = []
    for cell, arrays, t in zip(
        layer.cells, keras_weights(layer, params), targets, strict=True
    ):
        _check_target(cell, layer, t)
        current = [np.shape(w) for w in t.get_weights()]
        arrays = _drop_zero_biases(arrays, len(current), t.name, layer.bidirectional)
        _check_shapes(f"target {t.name!r}", current, [a.shape for a in arrays])
        staged.append((t, arrays))
    for t, arrays in staged:  # all checked before any is written
        t.set_weights(arrays)
    return target


def _drop_zero_biases(
    arrays: list[np.ndarray], n_target: int, name: str, bidirectional: bool
) -> list[np.ndarray]:
    """Fit the arrays to a ``use_bias=False`` target (2 arrays per direction)."""
    per = 3
    directions = 2 if bidirectional else 1
    if n_target != 2 * directions or len(arrays) != per * directions:
        return arrays
    out = []
    for d in range(directions):
        w_x, w_h, b = arrays[d * per : (d + 1) * per]
        if np.any(b != 0):
            raise ValueError(
                f"target {name!r}: has use_bias=False, but the jaxseq biases are "
                f"nonzero (max |b| = {float(np.abs(b).max()):.3g})."
            )
        out += [w_x, w_h]
    return out
