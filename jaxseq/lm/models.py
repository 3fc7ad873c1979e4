"""Language-model builders: stacked Elman/GRU/LSTM and a small causal transformer.

A language model is a bundle of pure functions (:class:`LanguageModel`):

- ``init(key) -> params``;
- ``init_carry(params, batch_size) -> carry``: the state a stream starts from;
- ``apply(params, carry, ids, *, resets=None, key=None) -> (carry, logits)``:
  ``ids`` ``[B, T]`` int32 continue the streams whose state is ``carry``;
  ``logits`` ``[B, T, V]`` predict the next token at every step; ``resets``
  ``[B, T]`` bool puts a stream's state back to the start before the step whose
  input starts a new document; ``key`` turns dropout on (training).

Reading a stream in chunks and passing the carry on gives the same logits as one
call over the whole stream (the tests check it for every model).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np

from .. import cells as jcells
from .. import text
from .._runner import rnn
from ..layers import stack
from ..models.transformer import Block
from ..nn import dropout as _dropout
from ._checks import check_ids, check_positive
from .loss import Readout, readout, readout_init

CELLS = jcells.BY_NAME  # the built-in cells by name


class LanguageModel(NamedTuple):
    """A next-token model as pure functions (see the module docstring).

    Attributes:
        init: ``init(key) -> params``.
        init_carry: ``init_carry(params, batch_size) -> carry``.
        apply: ``apply(params, carry, ids, *, resets=None, key=None) ->
            (carry, logits)``.
        config: ``{"name": ..., "vocab_size": V, **options}``.
    """

    init: Callable[[jax.Array], Any]
    init_carry: Callable[[Any, int], Any]
    apply: Callable[..., tuple[Any, jax.Array]]
    config: dict[str, Any]

    @property
    def vocab_size(self) -> int:
        """``V``, the number of token ids the model reads and predicts."""
        return int(self.config["vocab_size"])


def check_ids_batch(name: str, ids: Any, vocab_size: int) -> None:
    """Trace-time shape/dtype checks of ``[B, T]`` token ids (values when
    concrete)."""
    if jnp.ndim(ids) != 2:
        raise ValueError(
            f"{name}: expected rank 2 [B, T] (batch, time), got shape {jnp.shape(ids)}."
        )
    if not jnp.issubdtype(jnp.result_type(ids), jnp.integer):
        raise TypeError(f"{name}: expected integer ids, got {jnp.result_type(ids)}.")
    check_ids(name, ids, vocab_size)


def _check_rate(name: str, value: Any) -> float:
    if not isinstance(value, int | float) or not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name}: expected a rate in [0, 1), got {value!r}.")
    return float(value)


def _keys(key: jax.Array | None, n: int) -> list[jax.Array | None]:
    return [None] * n if key is None else list(jax.random.split(key, n))


def _drop(key: jax.Array | None, rate: float, x: jax.Array) -> jax.Array:
    return x if key is None or rate == 0.0 else _dropout(key, rate, x)


class TorchInit(NamedTuple):
    """PyTorch word_language_model's initialisation of an :func:`rnn_lm`.

    - embedding table ``[V, D]``: ``U(-embed_scale, embed_scale)``
      (``RNNModel.init_weights``: ``encoder.weight.uniform_(-0.1, 0.1)``);
    - untied readout kernel ``[H, V]``: ``U(-readout_scale, readout_scale)``
      (``decoder.weight``), readout bias 0 (``decoder.bias.zero_()``);
    - every recurrent kernel (``w_x``, ``w_h``) and separate bias (``b_x``,
      ``b_h``, the GRU's): ``nn.LSTM/GRU/RNN``'s own default
      ``U(-1/sqrt(H), 1/sqrt(H))``;
    - a single bias ``b`` (LSTM, Elman: PyTorch's ``b_ih + b_hh``): the sum of
      two independent ``U(-1/sqrt(H), 1/sqrt(H))`` draws (a triangular
      distribution on ``[-2/sqrt(H), 2/sqrt(H)]``, variance ``2/(3H)``).

    It replaces the cell's own initialisers (so no LSTM forget-gate offset).
    Cells whose parameters hold other fields (layer norm, peepholes) are
    refused.

    Attributes:
        embed_scale: half-width of the embedding table's uniform.
        readout_scale: half-width of the untied readout kernel's uniform.

    Examples:
        >>> import jax
        >>> from jaxseq.lm import TorchInit, rnn_lm
        >>> lm = rnn_lm(30, embed_dim=8, hidden=8, tied=True, init=TorchInit())
        >>> p = lm.init(jax.random.key(0))
        >>> w_h = p["rnn"][0].w_h                  # U(-1/sqrt(H), 1/sqrt(H))
        >>> float(abs(p["embed"]).max()) <= 0.1, float(abs(w_h).max()) <= 8**-0.5
        (True, True)
    """

    embed_scale: float = 0.1
    readout_scale: float = 0.1


_TORCH_FIELDS = {"w_x", "w_h", "b", "b_x", "b_h"}


def _torch_init(
    cfg: TorchInit, key: jax.Array, params: dict[str, Any], hidden: int
) -> dict[str, Any]:
    """Parameters shaped as ``params`` (the default init's shapes) drawn as
    :class:`TorchInit` says."""
    k_e, k_r, k_o = jax.random.split(key, 3)
    table = params["embed"]
    s = cfg.embed_scale
    embed = jax.random.uniform(k_e, table.shape, table.dtype, -s, s)
    bound = 1.0 / np.sqrt(hidden)

    def uniform(k: jax.Array, a: jax.Array) -> jax.Array:
        return jax.random.uniform(k, a.shape, a.dtype, -bound, bound)

    layers = []
    for k_layer, p in zip(
        jax.random.split(k_r, len(params["rnn"])), params["rnn"], strict=True
    ):
        keys = jax.random.split(k_layer, 2 * len(p._fields))
        fields = {}
        for i, name in enumerate(p._fields):
            a = getattr(p, name)
            fields[name] = uniform(keys[2 * i], a)
            if name == "b":  # b_ih + b_hh
                fields[name] = fields[name] + uniform(keys[2 * i + 1], a)
        layers.append(type(p)(**fields))
    out = params["out"]
    w = out.w
    if w is not None:
        r = cfg.readout_scale
        w = jax.random.uniform(k_o, w.shape, w.dtype, -r, r)
    return {
        "embed": embed,
        "rnn": tuple(layers),
        "out": Readout(w=w, b=jnp.zeros(out.b.shape, out.b.dtype)),
    }


def rnn_lm(
    vocab_size: int,
    *,
    cell: str | jcells.Cell = "lstm",
    embed_dim: int = 200,
    hidden: int = 200,
    num_layers: int = 2,
    tied: bool = False,
    dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    init: TorchInit | None = None,
) -> LanguageModel:
    """A recurrent LM: ``embedding -> num_layers x cell -> readout``.

    PyTorch's word_language_model ``RNNModel`` layout: dropout (training only) on
    the embeddings, between layers and on the last layer's outputs; optional
    recurrent dropout (one mask per stream and chunk,
    :func:`jaxseq.cells.recurrent_dropout`); optional weight tying (the readout
    kernel is the embedding table transposed; needs ``hidden == embed_dim``).

    Args:
        vocab_size: ``V``.
        cell: ``"lstm"``, ``"gru"``, ``"elman"``, or a :class:`~jaxseq.cells.Cell`
            (its ``hidden_size`` overrides ``hidden``; e.g.
            ``jaxseq.cells.lstm(200, forget_bias=0.0)``).
        embed_dim: ``D``.
        hidden: ``H`` of every layer.
        num_layers: stacked layers.
        tied: share the embedding table with the readout.
        dropout: rate on embeddings, between layers and on the outputs.
        recurrent_dropout: rate on ``h_{t-1}`` in the recurrent product.
        init: ``None``: jaxseq's initialisers (embedding ``U(-0.05, 0.05)``,
            the cell's own, Glorot-uniform readout); a :class:`TorchInit`:
            PyTorch word_language_model's recipe.

    Returns:
        A :class:`LanguageModel`; its carry is a tuple with one cell carry per
        layer (leaves ``[B, ...]``); ``params = {"embed": [V, D], "rnn": (one
        entry per layer), "out": Readout}``.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jaxseq.lm import rnn_lm
        >>> lm = rnn_lm(50, cell="gru", embed_dim=8, hidden=8, num_layers=2, tied=True)
        >>> params = lm.init(jax.random.key(0))
        >>> carry, logits = jax.eval_shape(       # shapes only; lm.apply runs it
        ...     lambda p: lm.apply(p, lm.init_carry(p, 3), jnp.ones((3, 7), jnp.int32)),
        ...     params)
        >>> logits.shape, carry[1].h.shape
        ((3, 7, 50), (3, 8))
    """
    check_positive("vocab_size", vocab_size)
    check_positive("embed_dim", embed_dim)
    check_positive("num_layers", num_layers)
    if isinstance(cell, jcells.Cell):
        base, cell_name = cell, cell.name
        hidden = cell.hidden_size
    elif cell in CELLS:
        check_positive("hidden", hidden)
        base, cell_name = CELLS[cell](hidden), cell
    else:
        raise ValueError(
            f"cell: expected one of {sorted(CELLS)} or a jaxseq.cells.Cell, got "
            f"{cell!r}."
        )
    if tied and hidden != embed_dim:
        raise ValueError(
            f"tied: expected hidden == embed_dim for weight tying, got hidden={hidden} "
            f"and embed_dim={embed_dim}."
        )
    rate = _check_rate("dropout", dropout)
    rec_rate = _check_rate("recurrent_dropout", recurrent_dropout)
    if init is not None and not isinstance(init, TorchInit):
        raise TypeError(
            f"init: expected None or a jaxseq.lm.TorchInit, got {type(init).__name__}."
        )
    layer = stack(base, num_layers)
    if init is not None:
        shapes = jax.eval_shape(lambda k: base.init(k, embed_dim), jax.random.key(0))
        extra = set(getattr(shapes, "_fields", ("?",))) - _TORCH_FIELDS
        if extra:
            raise ValueError(
                f"init: TorchInit draws the fields {sorted(_TORCH_FIELDS)} of a "
                f"cell's parameters, got a {cell_name!r} cell with "
                f"{sorted(extra)} too."
            )
    # the cell each layer runs: the base cell, or with recurrent dropout when
    # training asks for it; the runner applies the resets to either (a reset
    # restarts the cell's carry and keeps the dropout mask), on the fused kernels.
    dropped = jcells.recurrent_dropout(base, rec_rate)

    def default_init(key: jax.Array) -> dict[str, Any]:
        k_e, k_r, k_o = jax.random.split(key, 3)
        return {
            "embed": text.embedding_init(k_e, vocab_size, embed_dim),
            "rnn": layer.init(k_r, embed_dim),
            "out": readout_init(k_o, hidden, vocab_size, tied=tied),
        }

    def init_fn(key: jax.Array) -> dict[str, Any]:
        if init is None:
            return default_init(key)
        return _torch_init(init, key, jax.eval_shape(default_init, key), hidden)

    def init_carry(params: dict[str, Any], batch_size: int) -> tuple[Any, ...]:
        check_positive("batch_size", batch_size)

        def batched(p: Any) -> Any:
            c = base.init_carry(p)
            return jax.tree.map(
                lambda a: jnp.broadcast_to(a, (batch_size, *a.shape)), c
            )

        return tuple(batched(p) for p in params["rnn"])

    def apply(
        params: dict[str, Any],
        carry: tuple[Any, ...],
        ids: jax.Array,
        *,
        resets: jax.Array | None = None,
        key: jax.Array | None = None,
    ) -> tuple[tuple[Any, ...], jax.Array]:
        check_ids_batch("ids", ids, vocab_size)
        if not isinstance(carry, tuple) or len(carry) != num_layers:
            raise ValueError(
                f"carry: expected a tuple of {num_layers} layer carries "
                f"(lm.init_carry(params, batch_size)), got {type(carry).__name__} "
                f"of length {len(carry) if isinstance(carry, tuple) else '-'}."
            )
        if resets is not None:
            if jnp.shape(resets) != ids.shape:
                raise ValueError(
                    f"resets: expected shape {ids.shape} (as ids), got "
                    f"{jnp.shape(resets)}."
                )
            resets = jnp.asarray(resets, bool)
        k_embed, k_rec, *k_out = _keys(key, num_layers + 2)
        k_rec = _keys(k_rec, num_layers)
        x = _drop(k_embed, rate, text.embed(params["embed"], ids))
        new_carries = []
        for i, (p, c) in enumerate(zip(params["rnn"], carry, strict=True)):
            rec = k_rec[i] is not None and rec_rate > 0.0
            run_cell = dropped if rec else base
            if rec:
                c = jcells.dropout_carry(k_rec[i], run_cell, p, inner=c)
            c, x = rnn(run_cell, p, x, carry0=c, resets=resets)
            new_carries.append(c.inner if rec else c)
            x = _drop(k_out[i], rate, x)
        table = params["embed"] if tied else None
        return tuple(new_carries), readout(params["out"], x, table)

    config = {
        "name": "rnn_lm",
        "vocab_size": vocab_size,
        "cell": cell_name,
        "cell_options": [list(o) for o in base.options],
        "embed_dim": embed_dim,
        "hidden": hidden,
        "num_layers": num_layers,
        "tied": bool(tied),
        "dropout": rate,
        "recurrent_dropout": rec_rate,
    }
    if init is not None:  # absent for the default: older configs stay valid
        config["init"] = {"torch": init._asdict()}
    return LanguageModel(init_fn, init_carry, apply, config)


class Window(NamedTuple):
    """The causal transformer's carry: the last ``C`` tokens it has read.

    Attributes:
        ids: int32 ``[B, C]`` token ids (most recent last).
        valid: bool ``[B, C]``, false for slots not yet filled.
        doc: int32 ``[B, C]``, a document counter: attention never crosses it.
        pos: int32 ``[B, C]``, each token's position within its document.
    """

    ids: jax.Array
    valid: jax.Array
    doc: jax.Array
    pos: jax.Array


def sinusoid(pos: jax.Array, dim: int) -> jax.Array:
    """Sinusoidal encodings (Vaswani et al., 2017, section 3.5) of integer
    positions ``pos`` (any shape) -> ``[*pos.shape, dim]``; no length limit."""
    rates = 1.0 / 10000 ** (np.arange(0, dim, 2, dtype=np.float32) / dim)
    angle = pos[..., None].astype(jnp.float32) * rates
    out = jnp.zeros((*pos.shape, dim), jnp.float32)
    out = out.at[..., 0::2].set(jnp.sin(angle))
    return out.at[..., 1::2].set(jnp.cos(angle[..., : dim // 2]))


class _Decoder(fnn.Module):
    """Pre-norm blocks (the classifier's :class:`~jaxseq.models.transformer.Block`)
    under an arbitrary attention mask, then a final LayerNorm."""

    blocks: int
    heads: int
    ffn: int
    dropout: float

    @fnn.compact
    def __call__(self, x: jax.Array, mask: jax.Array, deterministic: bool):
        for i in range(self.blocks):
            x = Block(self.heads, self.ffn, self.dropout, name=f"block_{i}")(
                x, mask, deterministic
            )
        return fnn.LayerNorm()(x)


def _extend(window: Window, ids: jax.Array, resets: jax.Array | None) -> Window:
    """The window followed by the new tokens ``[B, C + T]``: document counters
    advance at each reset and positions restart there."""
    batch, time = ids.shape
    resets = jnp.zeros(ids.shape, bool) if resets is None else jnp.asarray(resets, bool)
    if window.ids.shape[1]:
        last_doc = window.doc[:, -1]
        last_pos = jnp.where(window.valid[:, -1], window.pos[:, -1], -1)
    else:
        last_doc = jnp.zeros((batch,), jnp.int32)
        last_pos = jnp.full((batch,), -1, jnp.int32)
    idx = jnp.arange(time, dtype=jnp.int32)
    doc = last_doc[:, None] + jnp.cumsum(resets, axis=1, dtype=jnp.int32)
    start = jax.lax.cummax(jnp.where(resets, idx, -1), axis=1)
    pos = jnp.where(start >= 0, idx - start, last_pos[:, None] + 1 + idx)
    cat = lambda a, b: jnp.concatenate([a, b.astype(a.dtype)], axis=1)
    return Window(
        cat(window.ids, ids),
        cat(window.valid, jnp.ones(ids.shape, bool)),
        cat(window.doc, doc),
        cat(window.pos, pos),
    )


def transformer_lm(
    vocab_size: int,
    *,
    dim: int = 64,
    heads: int = 4,
    ffn: int = 256,
    blocks: int = 2,
    context: int = 64,
    tied: bool = True,
    dropout: float = 0.0,
) -> LanguageModel:
    """A small causal transformer LM (Flax attention, causal mask).

    ``ids -> embedding * sqrt(D) + sinusoidal(position in document) -> blocks x
    [pre-norm causal self-attention, feed-forward] -> LayerNorm -> readout``.
    Its carry is a :class:`Window` of the last ``context`` tokens: each call
    attends over the window and the new tokens (keys ``j <= i`` of the same
    document), recomputing the window's states (no key/value cache), so reading
    a stream in chunks equals one call over it while the stream fits in
    ``context + T`` tokens; beyond that, attention is limited to the window.

    Args:
        vocab_size: ``V``.
        dim: ``D``, model width (a multiple of ``heads``).
        heads: attention heads.
        ffn: hidden units of each block's feed-forward layer.
        blocks: decoder blocks.
        context: ``C``, tokens kept in the carry (0: each call stands alone).
        tied: readout kernel = embedding table transposed.
        dropout: rate on embeddings, attention weights and residual branches.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jaxseq.lm import transformer_lm
        >>> lm = transformer_lm(30, dim=8, heads=2, ffn=16, blocks=1, context=4)
        >>> params = jax.eval_shape(lm.init, jax.random.key(0))  # shapes only
        >>> carry, logits = jax.eval_shape(
        ...     lambda p: lm.apply(p, lm.init_carry(p, 2), jnp.ones((2, 5), jnp.int32)),
        ...     params)
        >>> logits.shape, carry.ids.shape
        ((2, 5, 30), (2, 4))
    """
    for name, value in (
        ("vocab_size", vocab_size),
        ("dim", dim),
        ("heads", heads),
        ("ffn", ffn),
        ("blocks", blocks),
    ):
        check_positive(name, value)
    if isinstance(context, bool) or not isinstance(context, int) or context < 0:
        raise ValueError(f"context: expected an int >= 0, got {context!r}.")
    if dim % heads:
        raise ValueError(f"dim: expected a multiple of heads={heads}, got {dim}.")
    rate = _check_rate("dropout", dropout)
    decoder = _Decoder(blocks, heads, ffn, rate)

    def init(key: jax.Array) -> dict[str, Any]:
        k_e, k_d, k_o = jax.random.split(key, 3)
        x = jnp.zeros((1, 2, dim))
        mask = jnp.ones((1, 1, 2, 2), bool)
        return {
            "embed": text.embedding_init(k_e, vocab_size, dim),
            "decoder": decoder.init(k_d, x, mask, True)["params"],
            "out": readout_init(k_o, dim, vocab_size, tied=tied),
        }

    def init_carry(params: dict[str, Any], batch_size: int) -> Window:
        check_positive("batch_size", batch_size)
        shape = (batch_size, context)
        zeros = lambda dtype=jnp.int32: jnp.zeros(shape, dtype)  # separate buffers
        return Window(zeros(), zeros(bool), zeros(), zeros())

    def apply(
        params: dict[str, Any],
        carry: Window,
        ids: jax.Array,
        *,
        resets: jax.Array | None = None,
        key: jax.Array | None = None,
    ) -> tuple[Window, jax.Array]:
        check_ids_batch("ids", ids, vocab_size)
        if not isinstance(carry, Window) or carry.ids.shape != (ids.shape[0], context):
            raise ValueError(
                f"carry: expected a Window of shape ({ids.shape[0]}, {context}) "
                f"(lm.init_carry(params, batch_size)), got {type(carry).__name__}"
                f"{'' if not isinstance(carry, Window) else tuple(carry.ids.shape)}."
            )
        if resets is not None and jnp.shape(resets) != ids.shape:
            raise ValueError(
                f"resets: expected shape {ids.shape} (as ids), got {jnp.shape(resets)}."
            )
        full = _extend(carry, ids, resets)
        k_in, k_dec = _keys(key, 2)
        x = text.embed(params["embed"], full.ids) * np.float32(np.sqrt(dim))
        x = _drop(k_in, rate, x + sinusoid(full.pos, dim))
        n = full.ids.shape[1]
        causal = jnp.tril(jnp.ones((n, n), bool))
        same = full.doc[:, :, None] == full.doc[:, None, :]
        mask = (causal & same & full.valid[:, None, :]) | jnp.eye(n, dtype=bool)
        rngs = None if k_dec is None else {"dropout": k_dec}
        hs = decoder.apply(
            {"params": params["decoder"]}, x, mask[:, None], k_dec is None, rngs=rngs
        )
        table = params["embed"] if tied else None
        logits = readout(params["out"], hs[:, context:], table)
        new = Window(*(a[:, a.shape[1] - context :] for a in full))
        return new, logits

    config = {
        "name": "transformer_lm",
        "vocab_size": vocab_size,
        "dim": dim,
        "heads": heads,
        "ffn": ffn,
        "blocks": blocks,
        "context": context,
        "tied": bool(tied),
        "dropout": rate,
    }
    return LanguageModel(init, init_carry, apply, config)


def from_config(config: dict[str, Any]) -> LanguageModel:
    """The :class:`LanguageModel` whose ``config`` this is (as saved with its
    parameters): the inverse of ``lm.config`` for :func:`rnn_lm` with a
    built-in cell and for :func:`transformer_lm`.

    Examples:
        >>> from jaxseq.lm import rnn_lm
        >>> from jaxseq.lm.models import from_config
        >>> lm = rnn_lm(30, cell="gru", embed_dim=8, hidden=8, num_layers=1)
        >>> from_config(lm.config).config == lm.config
        True
    """
    if not isinstance(config, dict) or config.get("name") not in (
        "rnn_lm",
        "transformer_lm",
    ):
        got = config.get("name") if isinstance(config, dict) else type(config).__name__
        raise ValueError(
            f"config: expected the config of rnn_lm or transformer_lm (name), got "
            f"{got!r}."
        )
    rest = {k: v for k, v in config.items() if k not in ("name", "vocab_size")}
    if config["name"] == "transformer_lm":
        return transformer_lm(config["vocab_size"], **rest)
    name, options = rest.pop("cell"), dict(rest.pop("cell_options"))
    if "init" in rest:
        rest["init"] = TorchInit(**rest["init"]["torch"])
    if name not in CELLS:
        raise ValueError(f"config.cell: expected one of {sorted(CELLS)}, got {name!r}.")
    cell = CELLS[name](rest.pop("hidden"), **options)
    return rnn_lm(config["vocab_size"], cell=cell, **rest)


__all__ = [
    "CELLS",
    "from_config",
    "LanguageModel",
    "Readout",
    "Window",
    "rnn_lm",
    "sinusoid",
    "TorchInit",
    "transformer_lm",
]
