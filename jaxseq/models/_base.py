"""The model interface and the registry by name.

A text classifier is a bundle of pure functions, like a cell:

- ``init(key) -> params``: a fresh parameter pytree (dicts, tuples and jaxseq's
  parameter NamedTuples; arrays only, so :mod:`jaxseq.io` can save it).
- ``apply(params, ids, lengths, *, key=None) -> logits``: ``ids`` ``[B, T]``
  int32 token ids, right-padded with 0, ``lengths`` ``[B]`` the valid steps;
  ``logits`` ``[B]`` float32, the log-odds of the positive class. ``key`` turns
  dropout on (training); ``None`` means inference. Models without dropout
  ignore it, so every model is called the same way.
- ``config``: a JSON-serialisable dict ``{"name": ..., **options}`` with every
  option resolved, so ``build(**config)`` rebuilds the same model.
- ``adapt``: ``None``, or ``adapt(params, ids, lengths, labels) -> params`` for
  models with statistics of the training data (computed on the host, once,
  before training; stored under ``params["stats"]``, which is never trained).

Every model reads only ``ids[b, :lengths[b]]``: the padding's ids and any extra
padded steps do not change its output (the tests check it for each model).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

#: Top-level params key of data statistics: set by ``adapt``, never trained.
STATS = "stats"


class Model(NamedTuple):
    """A text classifier as pure functions (see the module docstring).

    Attributes:
        init: ``init(key) -> params``.
        apply: ``apply(params, ids [B, T], lengths [B], *, key=None) -> [B]``
            logits.
        config: ``{"name": ..., **options}``; :func:`from_config` rebuilds it.
        adapt: optional ``adapt(params, ids, lengths, labels) -> params``
            (host-side statistics of the training data).
    """

    init: Callable[[jax.Array], Any]
    apply: Callable[..., jax.Array]
    config: dict[str, Any]
    adapt: Callable[..., Any] | None = None

    @property
    def name(self) -> str:
        """The registry name."""
        return self.config["name"]

    @property
    def vocab_size(self) -> int:
        """Rows of the model's token table (the vocabulary size it expects)."""
        return int(self.config["vocab_size"])


_REGISTRY: dict[str, Callable[..., Model]] = {}
_SUMMARIES: dict[str, str] = {}


def register(name: str, summary: str) -> Callable[[Callable[..., Model]], Callable]:
    """Register a factory ``factory(vocab_size, **options) -> Model`` as ``name``.

    The factory's keyword defaults are the model's defaults; :func:`build`
    records the resolved options in ``Model.config``.
    """

    def decorate(factory: Callable[..., Model]) -> Callable[..., Model]:
        if name in _REGISTRY:
            raise ValueError(f"name: {name!r} is already registered.")
        _REGISTRY[name] = factory
        _SUMMARIES[name] = summary
        return factory

    return decorate


def names() -> tuple[str, ...]:
    """The registered model names, in registration order."""
    return tuple(_REGISTRY)


def summaries() -> dict[str, str]:
    """``name -> one-line description`` of every registered model."""
    return dict(_SUMMARIES)


def options(name: str) -> dict[str, Any]:
    """The default options of model ``name`` (``vocab_size`` excluded)."""
    factory = _factory(name)
    params = inspect.signature(factory).parameters
    return {k: p.default for k, p in params.items() if k != "vocab_size"}


def build(name: str, **kwargs: Any) -> Model:
    """Build the registered model ``name`` with ``vocab_size`` and options.

    Args:
        name: one of :func:`names`.
        **kwargs: ``vocab_size`` (required) and any of the model's options.

    Returns:
        The :class:`Model`, whose ``config`` holds ``name`` and every option.

    Raises:
        ValueError: for an unknown name or option (the message lists the valid
            ones).

    Examples:
        >>> from jaxseq import models
        >>> model = models.build("lab", vocab_size=100)
        >>> model.config
        {'name': 'lab', 'vocab_size': 100, 'embed_dim': 4, 'hidden': 4, 'head_units': 4}
        >>> models.from_config(model.config).config == model.config
        True
    """
    factory = _factory(name)
    signature = inspect.signature(factory)
    unknown = sorted(set(kwargs) - set(signature.parameters))
    if unknown:
        raise ValueError(
            f"{name}: unknown option(s) {unknown}; expected some of "
            f"{sorted(signature.parameters)}."
        )
    if "vocab_size" not in kwargs:
        raise ValueError(f"{name}: vocab_size is required (len(vocab)).")
    bound = signature.bind(**kwargs)
    bound.apply_defaults()
    resolved = {k: _jsonable(v) for k, v in bound.arguments.items()}
    model = factory(**kwargs)
    return model._replace(config={"name": name, **resolved})


def from_config(config: Mapping[str, Any]) -> Model:
    """Rebuild a model from its ``config`` (as saved with a trained model)."""
    if not isinstance(config, Mapping) or "name" not in config:
        raise ValueError(
            f"config: expected a dict with a 'name' entry, got {config!r:.100}."
        )
    options = {k: _unjson(v) for k, v in config.items() if k != "name"}
    return build(config["name"], **options)


def _factory(name: str) -> Callable[..., Model]:
    if name not in _REGISTRY:
        raise ValueError(f"name: expected one of {sorted(_REGISTRY)}, got {name!r}.")
    return _REGISTRY[name]


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _unjson(value: Any) -> Any:
    return tuple(_unjson(v) for v in value) if isinstance(value, list) else value


def count_params(params: Any) -> int:
    """Number of trainable scalars (``params["stats"]`` excluded).

    Examples:
        >>> import jax
        >>> from jaxseq import models
        >>> model = models.build("lab", vocab_size=10_000)
        >>> models.count_params(model.init(jax.random.key(0)))
        40169
    """
    if isinstance(params, Mapping):
        params = {k: v for k, v in params.items() if k != STATS}
    return int(sum(np.size(x) for x in jax.tree.leaves(params)))


def check_inputs(model: str, ids: jax.Array, lengths: jax.Array) -> None:
    """Trace-time checks shared by every model's ``apply``."""
    if jnp.ndim(ids) != 2:
        raise ValueError(
            f"{model}: ids: expected rank 2 [B, T] (batch, time), got shape "
            f"{jnp.shape(ids)}."
        )
    if not jnp.issubdtype(jnp.result_type(ids), jnp.integer):
        raise TypeError(
            f"{model}: ids: expected integer ids, got {jnp.result_type(ids)}."
        )
    if jnp.shape(lengths) != (jnp.shape(ids)[0],):
        raise ValueError(
            f"{model}: lengths: expected shape ({jnp.shape(ids)[0]},) (one per row "
            f"of ids), got {jnp.shape(lengths)}."
        )


def check_positive(name: str, value: Any) -> int:
    """A positive int option, or a ``ValueError`` naming it."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value!r}.")
    return int(value)


def check_rate(name: str, value: Any) -> float:
    """A dropout rate in ``[0, 1)``, or a ``ValueError`` naming it."""
    if not isinstance(value, int | float) or not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name}: expected a rate in [0, 1), got {value!r}.")
    return float(value)
