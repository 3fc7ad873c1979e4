"""Weight exchange with ``torch.nn.LSTM``, ``torch.nn.GRU`` and ``torch.nn.RNN``.

jaxseq never imports torch here: the functions read and write plain mappings of
array-likes (a ``module.state_dict()`` works as it is; tensors are converted with
``numpy.asarray(t.detach().cpu())``). Layouts:

- PyTorch stores ``weight_ih_l{k}[_reverse]`` as ``[G, F]`` and
  ``weight_hh_l{k}[_reverse]`` as ``[G, H]`` with the gates stacked in the same order
  as jaxseq (LSTM ``i f g o``, GRU ``r z n``); jaxseq's kernels are their transposes.
- LSTM and Elman biases ``b_ih + b_hh`` add, so jaxseq keeps their sum. GRU keeps
  both (``b_x = b_ih``, ``b_h = b_hh``), as the candidate's ``b_hn`` sits inside the
  reset gate. PyTorch's GRU is the ``reset_after=True`` form.
- Exporting an LSTM/Elman puts the whole bias in ``bias_ih`` and zeros in
  ``bias_hh``: the same function, and it round-trips exactly.

Example (torch is not a jaxseq dependency, so this is not a doctest; the same
round trip runs in ``tests/cells/test_peers.py``)::

    layer, params = from_torch(torch.nn.LSTM(8, 16, num_layers=2, bidirectional=True))
    carries, ys = layer.apply(params, xs, lengths=lengths)
    module.load_state_dict(
        {k: torch.from_numpy(v) for k, v in to_state_dict(layer, params).items()}
    )
    module = to_torch(layer, params)   # or build a new module in one call
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np

from ..cells import (
    ElmanParams,
    GRUParams,
    LSTMParams,
    elman,
    gru,
    lstm,
)
from ..layers import BiParams, RNNLayer, stack

_GATES = {"lstm": 4, "gru": 3, "elman": 1}
_MODES = {"LSTM": "lstm", "GRU": "gru", "RNN_TANH": "elman", "RNN_RELU": "elman"}


def _np(t: Any) -> np.ndarray:
    """A NumPy array in the source's own precision (float64 stays float64)."""
    if hasattr(t, "detach"):  # a torch tensor
        t = t.detach().cpu()
        if not t.dtype.is_floating_point or t.dtype.itemsize < 4:
            t = t.float()  # bfloat16/float16 (NumPy has no bfloat16): exact in f32
        t = t.numpy()
    a = np.asarray(t)
    if not np.issubdtype(a.dtype, np.floating):
        return a.astype(np.float32)
    return a


def _key(name: str, layer: int, reverse: bool) -> str:
    return f"{name}_l{layer}{'_reverse' if reverse else ''}"


def _get(sd: Mapping[str, Any], key: str, shape: tuple[int, ...]) -> np.ndarray:
    if key not in sd:
        raise ValueError(f"state_dict: expected key {key!r}, not found.")
    a = _np(sd[key])
    if a.shape != shape:
        raise ValueError(f"state_dict[{key!r}]: expected shape {shape}, got {a.shape}.")
    return a


def _direction_params(
    sd: Mapping[str, Any],
    cell: str,
    layer: int,
    reverse: bool,
    input_size: int,
    hidden: int,
    bias: bool,
    dtype: Any,
) -> Any:
    g = _GATES[cell] * hidden
    w_ih = _get(sd, _key("weight_ih", layer, reverse), (g, input_size))
    w_hh = _get(sd, _key("weight_hh", layer, reverse), (g, hidden))
    if bias:
        b_ih = _get(sd, _key("bias_ih", layer, reverse), (g,))
        b_hh = _get(sd, _key("bias_hh", layer, reverse), (g,))
    else:
        b_ih = b_hh = np.zeros((g,), w_ih.dtype)

    def a(x: np.ndarray) -> Any:
        return jnp.asarray(x, dtype)

    if cell == "gru":
        return GRUParams(w_x=a(w_ih.T), w_h=a(w_hh.T), b_x=a(b_ih), b_h=a(b_hh))
    # The sum in the wider of the source's and the target's precision, rounded
    # once: float64 weights keep float64's sum (a float32 sum was off by 1e-8).
    wide = np.promote_types(np.result_type(b_ih, b_hh), np.dtype(dtype))
    b = a(b_ih.astype(wide) + b_hh.astype(wide))
    if cell == "lstm":
        return LSTMParams(w_x=a(w_ih.T), w_h=a(w_hh.T), b=b)
    return ElmanParams(w_x=a(w_ih.T), w_h=a(w_hh.T), b=b)


def params_from_state_dict(
    state_dict: Mapping[str, Any],
    *,
    mode: str,
    input_size: int,
    hidden_size: int,
    num_layers: int = 1,
    bidirectional: bool = False,
    bias: bool = True,
    dtype: Any = jnp.float32,
) -> tuple[Any, ...]:
    """jaxseq layer parameters from a PyTorch RNN ``state_dict``.

    Args:
        state_dict: mapping with PyTorch's key names (tensors or arrays).
        mode: ``"lstm"``, ``"gru"`` or ``"elman"``.
        input_size, hidden_size, num_layers, bidirectional, bias: as the module's.
        dtype: dtype of the returned parameters.

    Returns:
        A tuple with one entry per layer (cell params, or :class:`BiParams`), as
        :meth:`jaxseq.layers.RNNLayer.init` returns.
    """
    if mode not in _GATES:
        raise ValueError(f"mode: expected one of {sorted(_GATES)}, got {mode!r}.")
    params = []
    size = input_size
    for k in range(num_layers):
        args = (mode, k)
        fw = _direction_params(state_dict, *args, False, size, hidden_size, bias, dtype)
        if bidirectional:
            bw = _direction_params(
                state_dict, *args, True, size, hidden_size, bias, dtype
            )
            params.append(BiParams(fw, bw))
        else:
            params.append(fw)
        size = hidden_size * (2 if bidirectional else 1)
    return tuple(params)


def from_torch(module: Any, *, dtype: Any = jnp.float32) -> tuple[RNNLayer, Any]:
    """A jaxseq layer and its parameters equal to a ``torch.nn.LSTM/GRU/RNN``.

    The returned layer computes the same function as the module (outputs and final
    states agree to float32 rounding), with PyTorch's ``dropout`` between layers.
    Batch-first or not does not matter: jaxseq layers take ``[B, T, F]``.

    Args:
        module: a ``torch.nn.LSTM``, ``torch.nn.GRU`` or ``torch.nn.RNN``.
        dtype: parameter dtype.

    Returns:
        ``(layer, params)`` for :meth:`RNNLayer.apply`.

    Raises:
        ValueError: for unsupported options (``proj_size > 0``).
    """
    mode = _MODES.get(getattr(module, "mode", None))
    if mode is None:
        raise ValueError(
            "module: expected torch.nn.LSTM, torch.nn.GRU or torch.nn.RNN, got "
            f"{type(module).__name__}."
        )
    if getattr(module, "proj_size", 0):
        raise ValueError(
            f"module.proj_size: expected 0 (projected LSTMs are not supported), got "
            f"{module.proj_size}."
        )
    hidden = int(module.hidden_size)
    if mode == "lstm":
        cell = lstm(hidden, forget_bias=0.0, dtype=dtype)
    elif mode == "gru":
        cell = gru(hidden, reset_after=True, dtype=dtype)
    else:
        cell = elman(hidden, activation=module.nonlinearity, dtype=dtype)
    layer = stack(
        cell,
        int(module.num_layers),
        bidirectional=bool(module.bidirectional),
        dropout=float(module.dropout),
    )
    params = params_from_state_dict(
        module.state_dict(),
        mode=mode,
        input_size=int(module.input_size),
        hidden_size=hidden,
        num_layers=int(module.num_layers),
        bidirectional=bool(module.bidirectional),
        bias=bool(module.bias),
        dtype=dtype,
    )
    return layer, params


def to_state_dict(layer: RNNLayer, params: tuple[Any, ...]) -> dict[str, np.ndarray]:
    """A PyTorch ``state_dict`` (float32 NumPy arrays) for jaxseq layer parameters.

    Load it with ``module.load_state_dict({k: torch.from_numpy(v) for k, v in
    sd.items()})`` into a module built with the same sizes. Only the forms PyTorch
    has are exported: GRU with ``reset_after=True``, Elman with tanh or relu.
    """
    out: dict[str, np.ndarray] = {}
    for k, (cell, p) in enumerate(zip(layer.cells, params, strict=True)):
        if cell.name == "gru" and not cell.option("reset_after"):
            raise ValueError(
                "layer: PyTorch's GRU is the reset_after=True form; got a "
                "reset_after=False GRU, which it cannot represent."
            )
        if cell.name == "elman" and cell.option("activation") not in ("tanh", "relu"):
            raise ValueError(
                "layer: PyTorch's RNN supports activation 'tanh' or 'relu', got "
                f"{cell.option('activation')!r}."
            )
        directions = (
            [(p.fw, False), (p.bw, True)] if layer.bidirectional else [(p, False)]
        )
        for q, rev in directions:
            # np.array copies: the arrays are writable, as torch.from_numpy wants
            out[_key("weight_ih", k, rev)] = np.array(q.w_x, np.float32).T.copy()
            out[_key("weight_hh", k, rev)] = np.array(q.w_h, np.float32).T.copy()
            if cell.name == "gru":
                b_ih, b_hh = np.array(q.b_x, np.float32), np.array(q.b_h, np.float32)
            else:
                b_ih = np.array(q.b, np.float32)
                b_hh = np.zeros_like(b_ih)
            out[_key("bias_ih", k, rev)] = b_ih
            out[_key("bias_hh", k, rev)] = b_hh
    return out


def to_torch(layer: RNNLayer, params: tuple[Any, ...]) -> Any:
    """A ``torch.nn.LSTM/GRU/RNN`` computing what a jaxseq layer computes.

    The one-call way back after :func:`from_torch` (or to hand a jaxseq model to
    PyTorch code). torch is imported here, lazily: it stays an optional peer. The
    module is built with ``batch_first=True`` (jaxseq's ``[B, T, F]`` layout), the
    layer's sizes and ``dropout``, on the CPU in float32, and left in training
    mode as PyTorch builds it (call ``.eval()`` for inference when ``dropout > 0``).

    Args:
        layer: a jaxseq layer whose layers all use one cell (same kind, hidden
            size and options): what ``torch.nn.LSTM/GRU/RNN`` can express.
        params: its parameters.

    Returns:
        The ``torch.nn`` module with the parameters loaded.

    Raises:
        ImportError: if torch is not installed.
        ValueError: for what PyTorch cannot express: ``reverse=True``,
            ``merge="sum"``, cells that differ between layers, a
            ``reset_after=False`` GRU or an Elman activation other than tanh/relu.
    """
    import torch  # optional peer; imported only when this function is called

    cell = layer.cells[0]
    key = (cell.name, cell.hidden_size, cell.options)
    if any((c.name, c.hidden_size, c.options) != key for c in layer.cells):
        raise ValueError(
            "layer: expected one cell for every layer (torch.nn modules repeat one "
            f"cell), got {[(c.name, c.hidden_size) for c in layer.cells]}."
        )
    if layer.reverse:
        raise ValueError("layer: torch.nn has no reverse-only RNN; got reverse=True.")
    if layer.bidirectional and layer.merge != "concat":
        raise ValueError(
            f"layer: torch.nn concatenates both directions; got merge={layer.merge!r}."
        )
    state = to_state_dict(layer, params)  # refuses the forms PyTorch lacks
    first = params[0].fw if layer.bidirectional else params[0]
    kwargs = dict(
        input_size=int(first.w_x.shape[0]),
        hidden_size=cell.hidden_size,
        num_layers=len(layer.cells),
        bidirectional=layer.bidirectional,
        # one layer has no "between layers": torch would warn about the rate
        dropout=layer.dropout if len(layer.cells) > 1 else 0.0,
        batch_first=True,
    )
    if cell.name == "lstm":
        module = torch.nn.LSTM(**kwargs)
    elif cell.name == "gru":
        module = torch.nn.GRU(**kwargs)
    else:
        module = torch.nn.RNN(nonlinearity=cell.option("activation"), **kwargs)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    return module
