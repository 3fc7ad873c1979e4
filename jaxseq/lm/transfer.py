"""From a recurrent language model to a text classifier (Dai & Le, 2015;
Howard & Ruder, 2018, "ULMFiT").

A recurrent LM (:func:`~jaxseq.lm.rnn_lm`) and a recurrent classifier
(:func:`jaxseq.models.recurrent_classifier`, registered as ``"lstm"``,
``"gru"``, ``"elman"``) share their lower part: ``embedding [V, D] -> L x
cell(H)``. Fine-tuning starts the classifier from the LM's embedding and
recurrent layers and a fresh pooling head:

- :func:`classifier_for` builds the classifier of an LM's architecture
  (unidirectional, the same cell, sizes and vocabulary; pooling ``"mean_max"``
  over the last layer's states, ULMFiT's concat pooling without the last
  state, or ``"last"``);
- :func:`transfer_params` copies the LM's parameters into it (a clear error when
  the vocabulary, sizes or cells differ);
- :func:`classifier_features` / :func:`with_boundary` prefix every review with
  the LM's ``<eos>``, the token the LM read at each document start, so that the
  classifier's states are the LM's states on the same tokens;
- :func:`pooled_features`: what the head reads (for probes of the LM's
  states);
- :func:`layer_groups` names ULMFiT's layer groups: ``0`` the head, ``1`` the top
  recurrent layer, ..., ``L`` the first one, ``L + 1`` the embedding;
- :class:`FineTuning` / :func:`fine_tuning` make the optimiser of the recipe:
  discriminative learning rates (group ``g`` at ``learning_rate / decay**g``),
  gradual unfreezing (group ``g`` updated from step ``g * unfreeze_every``;
  ``optax.transforms.conditionally_mask`` gives the frozen groups zero updates
  and leaves their optimiser state untouched) and the slanted triangular
  schedule (:func:`slanted_triangular`, built from ``optax.linear_schedule``
  and ``optax.join_schedules``), all Optax transformations.

Guide: docs/transfer.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np
import optax

from .. import models as _models
from .. import text
from ..layers import stack
from ..models._head import pool
from ..models.recurrent import CELLS
from .models import LanguageModel
from .streams import EOS_ID, check_lm_vocabulary

#: Cell options that only change the initial parameters (not the equations).
_INIT_ONLY_OPTIONS = {"forget_bias"}


def _lm_config(lm: LanguageModel) -> dict[str, Any]:
    if not isinstance(lm, LanguageModel):
        raise TypeError(
            f"lm: expected a jaxseq.lm.LanguageModel (rnn_lm), got {type(lm).__name__}."
        )
    config = lm.config
    if config.get("name") != "rnn_lm":
        raise ValueError(
            f"lm: expected a recurrent LM (jaxseq.lm.rnn_lm), got a "
            f"{config.get('name')!r} model."
        )
    cell = config["cell"]
    if cell not in CELLS:
        raise ValueError(
            f"lm: expected a cell among {sorted(CELLS)} (the classifier's cells), got "
            f"{cell!r}."
        )
    hidden = config["hidden"]
    default = dict(CELLS[cell](hidden).options)
    got = {k: v for k, v in config["cell_options"]}
    differs = {
        k: v
        for k, v in got.items()
        if k not in _INIT_ONLY_OPTIONS and default.get(k) != v
    }
    if differs:
        raise ValueError(
            f"lm: expected the classifier's {cell!r} cell equations "
            f"{ {k: default.get(k) for k in differs} }, got cell options {differs}."
        )
    return config


def classifier_for(
    lm: LanguageModel,
    *,
    pooling: str = "mean_max",
    head: Sequence[int] = (),
    dropout: float = 0.0,
) -> _models.Model:
    """The classifier with ``lm``'s embedding and recurrent layers.

    ``embedding [V, D] -> L x cell(H) (unidirectional, reading left to right)
    -> pooling over the valid steps -> Dense head -> logit``; registered as
    ``lm.config["cell"]`` (``"lstm"``, ``"gru"``, ``"elman"``), so
    :func:`jaxseq.models.save` / :func:`~jaxseq.models.load` handle it.

    Args:
        lm: a :func:`~jaxseq.lm.rnn_lm` with a built-in cell.
        pooling: ``"mean_max"`` (mean and max of the last layer's states,
            concatenated), ``"mean"``, ``"max"`` or ``"last"``.
        head: hidden Dense(relu) sizes before the output unit.
        dropout: the classifier's dropout rate (embeddings, between layers, the
            pooled features).

    Returns:
        A :class:`jaxseq.models.Model`; ``apply(params, ids [B, T], lengths
        [B], *, key=None) -> logits [B]``.

    Examples:
        >>> from jaxseq.lm import rnn_lm
        >>> from jaxseq.lm.transfer import classifier_for
        >>> lm = rnn_lm(40, embed_dim=8, hidden=8, num_layers=2)
        >>> model = classifier_for(lm, head=(4,))
        >>> model.config["name"], model.config["layers"], model.config["pooling"]
        ('lstm', 2, 'mean_max')
    """
    config = _lm_config(lm)
    return _models.build(
        config["cell"],
        vocab_size=config["vocab_size"],
        embed_dim=config["embed_dim"],
        hidden=config["hidden"],
        layers=config["num_layers"],
        pooling=pooling,
        head=tuple(head),
        dropout=dropout,
    )


def _mismatch(what: str, expected: Any, got: Any) -> ValueError:
    return ValueError(f"{what}: expected {expected}, got {got}.")


def transfer_params(
    lm: LanguageModel, lm_params: Any, model: _models.Model, key: jax.Array
) -> dict[str, Any]:
    """The classifier's initial parameters: ``lm_params``' embedding and
    recurrent layers, and ``model``'s own fresh head (drawn with ``key``).

    Args:
        lm: the :func:`~jaxseq.lm.rnn_lm` that ``lm_params`` belong to.
        lm_params: its (trained) parameters ``{"embed": [V, D], "rnn": (one per
            layer), "out": ...}``; the readout is dropped.
        model: a recurrent classifier of the same architecture
            (:func:`classifier_for`; or ``jaxseq.models.build("lstm", ...)``
            with the LM's vocabulary size, sizes and number of layers,
            unidirectional, not reversed).
        key: PRNG key of the head's initialisation.

    Returns:
        ``{"embed", "rnn", "head"}``, the layout of ``model.init(key)``.

    Raises:
        ValueError: naming the argument, the expected and the received value,
            when the cells, the vocabulary size, the sizes, the number of layers
            or the parameter shapes differ.

    Examples:
        >>> import jax
        >>> from jaxseq.lm import rnn_lm
        >>> from jaxseq.lm.transfer import classifier_for, transfer_params
        >>> lm = rnn_lm(40, embed_dim=8, hidden=8, num_layers=1)
        >>> lm_params = lm.init(jax.random.key(0))
        >>> model = classifier_for(lm)
        >>> params = transfer_params(lm, lm_params, model, jax.random.key(1))
        >>> bool((params["embed"] == lm_params["embed"]).all())
        True
    """
    config = _lm_config(lm)
    if not isinstance(model, _models.Model):
        raise TypeError(
            f"model: expected a jaxseq.models.Model, got {type(model).__name__}."
        )
    mc = model.config
    if mc.get("name") != config["cell"]:
        raise _mismatch(
            "model",
            f"a {config['cell']!r} recurrent classifier (the LM's cell)",
            f"a {mc.get('name')!r} model",
        )
    expected = {
        "vocab_size": config["vocab_size"],
        "embed_dim": config["embed_dim"],
        "hidden": config["hidden"],
        "layers": config["num_layers"],
        "bidirectional": False,
        "reverse": False,
    }
    for name, value in expected.items():
        if mc.get(name) != value:
            raise _mismatch(
                f"model.config[{name!r}]", f"{value!r} (the LM's)", repr(mc.get(name))
            )
    if not isinstance(lm_params, dict) or not {"embed", "rnn"} <= set(lm_params):
        raise _mismatch(
            "lm_params",
            "the LM's parameters {'embed', 'rnn', 'out'}",
            f"{type(lm_params).__name__}"
            + (
                f" with keys {sorted(lm_params)}" if isinstance(lm_params, dict) else ""
            ),
        )
    fresh = model.init(key)
    for part in ("embed", "rnn"):
        want = jax.tree.map(lambda a: f"{tuple(a.shape)} {a.dtype}", fresh[part])
        have = jax.tree.map(
            lambda a: f"{tuple(np.shape(a))} {np.asarray(a).dtype}", lm_params[part]
        )
        if jax.tree.structure(want) != jax.tree.structure(have) or want != have:
            raise _mismatch(
                f"lm_params[{part!r}]",
                f"arrays {jax.tree.leaves(want)} (the model's)",
                jax.tree.leaves(have),
            )
    return {"embed": lm_params["embed"], "rnn": lm_params["rnn"], "head": fresh["head"]}


def _recurrent_layers(model: _models.Model, what: str = "model"):
    """The recurrent stack of a unidirectional classifier from
    :func:`classifier_for` (rebuilt from its config)."""
    if not isinstance(model, _models.Model):
        raise TypeError(
            f"{what}: expected a jaxseq.models.Model, got {type(model).__name__}."
        )
    c = model.config
    if c.get("name") not in CELLS or c.get("bidirectional") or c.get("reverse"):
        raise _mismatch(
            what,
            f"a unidirectional recurrent classifier named one of {sorted(CELLS)} "
            "(classifier_for)",
            f"config {dict(c)!r:.120}",
        )
    return stack(CELLS[c["name"]](c["hidden"]), c["layers"]), c["pooling"]


def pooled_features(
    model: _models.Model, params: Any, ids: jax.Array, lengths: jax.Array
) -> jax.Array:
    """The features the head of a :func:`classifier_for` model reads
    (inference: no dropout).

    Args:
        model: the classifier.
        params: its parameters.
        ids: int ``[B, T]`` token ids, right-padded; ``lengths`` ``[B]``.

    Returns:
        ``[B, F]``: the pooling of the last recurrent layer's states over the
        valid steps (``F = 2 H`` for ``"mean_max"``).
    """
    layers, pooling = _recurrent_layers(model)
    carries, ys = layers.apply(
        params["rnn"], text.embed(params["embed"], ids), lengths=lengths
    )
    return pool(pooling, ys, lengths, carries[-1].h if pooling == "last" else None)


def with_boundary(features: _models.Features) -> _models.Features:
    """``features`` with each row prefixed by the LM's ``<eos>`` (id 2).

    A language model trained on :func:`~jaxseq.lm.encode_stream`'s streams
    reads ``<eos>`` before every document, from its initial state where it
    resets; the classifier reads the same tokens from the same state. Each row
    gains one id; a row that no longer fits drops its last id (featurise with
    ``maxlen - 1`` to keep every token).

    Args:
        features: :class:`jaxseq.models.Features` ``(ids [N, T], lengths [N],
            ...)``, right-padded.

    Returns:
        The same :class:`~jaxseq.models.Features` with ``ids [N, T]`` whose
        first column is ``<eos>`` and ``lengths + 1`` (at most ``T``).

    Examples:
        >>> import numpy as np
        >>> from jaxseq.models import Features
        >>> from jaxseq.lm.transfer import with_boundary
        >>> f = with_boundary(Features(np.array([[5, 6, 0], [7, 0, 0]]),
        ...                            np.array([2, 1]), 0, 0))
        >>> f.ids.tolist(), f.lengths.tolist()
        ([[2, 5, 6], [2, 7, 0]], [3, 2])
    """
    ids = np.asarray(features.ids)
    if ids.ndim != 2 or ids.shape[1] < 1:
        raise _mismatch(
            "features.ids", "a [N, T] array with T >= 1", f"shape {ids.shape}"
        )
    out = np.empty_like(ids)
    out[:, 0] = EOS_ID
    out[:, 1:] = ids[:, :-1]
    lengths = np.minimum(np.asarray(features.lengths) + 1, ids.shape[1]).astype(
        np.asarray(features.lengths).dtype
    )
    return features._replace(ids=out, lengths=lengths)


def classifier_features(
    vocab: text.Vocabulary, texts: Sequence[str], maxlen: int, *, what: str = "texts"
) -> _models.Features:
    """Texts -> classifier inputs that the LM reads as it was trained:
    ``<eos>`` then the last ``maxlen - 1`` tokens of each text (the LM's
    vocabulary, :func:`~jaxseq.lm.lm_vocabulary`, and tokenizer)."""
    check_lm_vocabulary(vocab)
    if isinstance(maxlen, bool) or not isinstance(maxlen, int) or maxlen < 2:
        raise _mismatch("maxlen", "an int >= 2 (<eos> and one token)", repr(maxlen))
    spec = _models.InputSpec(maxlen=maxlen - 1, truncating="pre")
    f = _models.featurize(vocab, spec, texts, what=what)
    padded = np.zeros((f.ids.shape[0], maxlen), f.ids.dtype)
    padded[:, : maxlen - 1] = f.ids
    return with_boundary(f._replace(ids=padded))


def layer_groups(params: Any) -> Any:
    """ULMFiT's layer group of every leaf of a recurrent classifier's
    parameters: ``0`` the head, ``1`` the top recurrent layer, ..., ``L`` the
    first recurrent layer, ``L + 1`` the embedding.

    Args:
        params: ``{"embed", "rnn": (L layers), "head"}`` (:func:`transfer_params`,
            or ``model.init`` of a recurrent classifier).

    Returns:
        A pytree of ints with the structure of ``params``.

    Examples:
        >>> import jax
        >>> from jaxseq import models
        >>> from jaxseq.lm.transfer import layer_groups
        >>> model = models.build("lstm", vocab_size=20, embed_dim=4, hidden=4, layers=2)
        >>> g = layer_groups(model.init(jax.random.key(0)))
        >>> g["embed"], g["rnn"][0].w_x, g["rnn"][1].w_x
        (3, 2, 1)
    """
    if not isinstance(params, dict) or set(params) != {"embed", "rnn", "head"}:
        raise _mismatch(
            "params",
            "a recurrent classifier's {'embed', 'rnn', 'head'}",
            f"{type(params).__name__}"
            + (f" with keys {sorted(params)}" if isinstance(params, dict) else ""),
        )
    layers = tuple(params["rnn"])
    top = len(layers)
    return {
        "embed": top + 1,
        "rnn": type(params["rnn"])(
            jax.tree.map(lambda _, g=top - i: g, layer)
            for i, layer in enumerate(layers)
        ),
        "head": jax.tree.map(lambda _: 0, params["head"]),
    }


class SlantedTriangular(NamedTuple):
    """Howard & Ruder's slanted triangular learning rate (2018, eq. 3).

    With ``T`` steps, ``cut = floor(T * cut_frac)``, ``p = t / cut`` while
    ``t < cut``, else ``1 - (t - cut) / (cut * (1 / cut_frac - 1))``, the rate
    at step ``t`` is ``peak * (1 + p * (ratio - 1)) / ratio``: a short linear
    rise from ``peak / ratio`` to ``peak``, then a long linear decay back.

    Attributes:
        cut_frac: fraction of the steps spent rising, in ``(0, 1)``.
        ratio: how much smaller the lowest rate is than the peak, ``>= 1``.
    """

    cut_frac: float = 0.1
    ratio: float = 32.0


def slanted_triangular(
    peak: float, total_steps: int, shape: SlantedTriangular | None = None
) -> optax.Schedule:
    """The schedule ``count -> rate`` of :class:`SlantedTriangular` (0-based
    ``count``, as Optax passes it; ``shape`` default ``SlantedTriangular()``),
    from ``optax.linear_schedule`` pieces joined by ``optax.join_schedules``;
    it stays at ``peak / ratio`` after the decay.

    Examples:
        >>> from jaxseq.lm.transfer import slanted_triangular
        >>> s = slanted_triangular(0.01, 100)
        >>> [round(float(s(t)) * 32 / 0.01, 3) for t in (0, 5, 10, 55, 100)]
        [1.0, 16.5, 32.0, 16.5, 1.0]
    """
    if not isinstance(peak, int | float) or isinstance(peak, bool) or not peak > 0:
        raise _mismatch("peak", "a positive learning rate", repr(peak))
    if isinstance(total_steps, bool) or not isinstance(total_steps, int | np.integer):
        raise _mismatch("total_steps", "a positive int", repr(total_steps))
    shape = SlantedTriangular() if shape is None else shape
    if not isinstance(shape, SlantedTriangular):
        raise TypeError(
            f"shape: expected a SlantedTriangular, got {type(shape).__name__}."
        )
    if not 0.0 < shape.cut_frac < 1.0:
        raise _mismatch("shape.cut_frac", "a fraction in (0, 1)", repr(shape.cut_frac))
    if not shape.ratio >= 1.0:
        raise _mismatch("shape.ratio", "a number >= 1", repr(shape.ratio))
    cut = int(np.floor(total_steps * shape.cut_frac))
    if cut < 1:
        raise _mismatch(
            "total_steps",
            f"at least {int(np.ceil(1 / shape.cut_frac))} steps (cut_frac "
            f"{shape.cut_frac} of them rising)",
            repr(total_steps),
        )
    low = peak / shape.ratio
    decay_steps = cut * (1.0 / shape.cut_frac - 1.0)
    return optax.join_schedules(
        [
            optax.linear_schedule(low, peak, cut),
            optax.linear_schedule(peak, low, decay_steps),
        ],
        [cut],
    )


class FineTuning(NamedTuple):
    """ULMFiT's fine-tuning recipe for :func:`fine_tuning`.

    Attributes:
        learning_rate: the head's (group 0's) peak rate.
        decay: discriminative rates: group ``g`` gets ``learning_rate /
            decay**g`` (2.6 in ULMFiT; 1.0: one rate for all).
        unfreeze_every: gradual unfreezing: group ``g`` is updated from step
            ``g * unfreeze_every`` on (an epoch's steps in ULMFiT); ``None``:
            every group from the start.
        schedule: a :class:`SlantedTriangular` over the run's steps, or
            ``None`` for constant rates.
        optimizer: ``optimizer(learning_rate=...) -> GradientTransformation``
            for one group (default ``optax.adam``; ULMFiT uses ``b1=0.7,
            b2=0.99``: ``functools.partial(optax.adam, b1=0.7, b2=0.99)``).
        clip_norm: global-norm clipping of the whole gradient, or ``None``.
    """

    learning_rate: float = 1e-3
    decay: float = 2.6
    unfreeze_every: int | None = None
    schedule: SlantedTriangular | None = SlantedTriangular()
    optimizer: Callable[..., optax.GradientTransformation] = optax.adam
    clip_norm: float | None = 1.0


def fine_tuning(
    params: Any, recipe: FineTuning, total_steps: int
) -> optax.GradientTransformation:
    """The optimiser of :class:`FineTuning` for a recurrent classifier.

    ``chain(clip_by_global_norm, multi_transform({group g:
    conditionally_mask(optimizer(learning_rate / decay**g), step >= g *
    unfreeze_every)}), scale_by_schedule(slanted_triangular / peak))``: each
    group has its own optimiser state (untouched, and its update zero, while it
    is frozen), and one schedule scales every group's update.

    Args:
        params: the classifier's parameters (:func:`layer_groups`).
        recipe: a :class:`FineTuning`.
        total_steps: the run's number of updates (the schedule's ``T``).

    Returns:
        An ``optax.GradientTransformation``.

    Examples:
        >>> import jax, optax
        >>> from jaxseq import models
        >>> from jaxseq.lm.transfer import FineTuning, fine_tuning
        >>> model = models.build("lstm", vocab_size=20, embed_dim=4, hidden=4)
        >>> params = model.init(jax.random.key(0))
        >>> opt = fine_tuning(params, FineTuning(unfreeze_every=10), total_steps=40)
        >>> state = opt.init(params)
    """
    if not isinstance(recipe, FineTuning):
        raise TypeError(f"recipe: expected a FineTuning, got {type(recipe).__name__}.")
    lr, decay = recipe.learning_rate, recipe.decay
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not lr > 0:
        raise _mismatch("recipe.learning_rate", "a positive number", repr(lr))
    if isinstance(decay, bool) or not isinstance(decay, int | float) or not decay >= 1:
        raise _mismatch("recipe.decay", "a number >= 1", repr(decay))
    every = recipe.unfreeze_every
    if every is not None and (
        isinstance(every, bool) or not isinstance(every, int | np.integer) or every < 1
    ):
        raise _mismatch("recipe.unfreeze_every", "None or a positive int", repr(every))
    if (
        isinstance(total_steps, bool)
        or not isinstance(total_steps, int | np.integer)
        or total_steps < 1
    ):
        raise _mismatch("total_steps", "a positive int", repr(total_steps))
    groups = layer_groups(params)
    count = max(jax.tree.leaves(groups)) + 1

    def group(g: int) -> optax.GradientTransformation:
        inner = recipe.optimizer(learning_rate=lr / decay**g)
        if every is None or g == 0:
            return inner
        start = g * int(every)
        return optax.transforms.conditionally_mask(inner, lambda step: step >= start)

    parts = (
        []
        if recipe.clip_norm is None
        else [optax.clip_by_global_norm(recipe.clip_norm)]
    )
    parts.append(optax.multi_transform({g: group(g) for g in range(count)}, groups))
    if recipe.schedule is not None:
        stlr = slanted_triangular(float(lr), int(total_steps), recipe.schedule)
        parts.append(optax.scale_by_schedule(lambda c: stlr(c) / lr))
    return optax.chain(*parts)


__all__ = [
    "FineTuning",
    "SlantedTriangular",
    "classifier_features",
    "classifier_for",
    "fine_tuning",
    "layer_groups",
    "pooled_features",
    "slanted_triangular",
    "transfer_params",
    "with_boundary",
]
