r"""Ridge (L2) penalties with one strength per parameter group.

The seed's weight decay for a shallow network ``sum_j beta_j psi(x' gamma_j)``,

.. math::

    h(\beta, \gamma) = \lambda_1 \sum_i \beta_i^2
        + \lambda_2 \sum_{j,i} \gamma_{ji}^2,

generalises to any parameter pytree by giving each leaf a *label* (its group) and
each label a strength ``lambda``. Two equivalent ways to use it:

- add :func:`ridge_penalty` to the loss (the penalty then shows in the loss
  value and in every metric computed from it), or
- chain :func:`ridge` in front of the optimiser: it adds the penalty's gradient
  ``2 lambda_g w`` to the gradient (coupled L2, exactly the gradient of the
  penalised loss), e.g. ``optax.chain(ridge(lambdas, labels), optax.sgd(lr))``.

Both give the same update for SGD. ``optax.adamw``'s decoupled weight decay
(Loshchilov & Hutter, 2019) is a different method: it shrinks the weights outside
Adam's preconditioning and is not the gradient of a penalty.

Labels are strings, one per leaf: a pytree of strings with the structure of the
parameters, or a function ``params -> labels`` such as the one returned by
:func:`labels_by_path`. Leaves whose label has no entry in ``lambdas`` are not
penalised (biases, usually).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax

Labels = Any  # a pytree of str with the structure of the parameters
LabelFn = Callable[[Any], Labels]


def path_name(path: Sequence[Any]) -> str:
    """A readable ``/``-joined name for a pytree key path (``cell/w_x``)."""
    parts = []
    for k in path:
        if isinstance(k, jax.tree_util.DictKey):
            parts.append(str(k.key))
        elif isinstance(k, jax.tree_util.GetAttrKey):
            parts.append(k.name)
        elif isinstance(k, jax.tree_util.SequenceKey):
            parts.append(str(k.idx))
        else:
            parts.append(str(k))
    return "/".join(parts)


def labels_by_path(
    rules: Mapping[str, str], *, default: str = "unpenalized"
) -> LabelFn:
    """A label function from regular expressions on each leaf's path name.

    Args:
        rules: ``{pattern: label}``; the first pattern (in insertion order) that
            ``re.search``-matches a leaf's path name (e.g. ``"cell/w_h"``,
            ``"readout/b"``; see :func:`path_name`) gives its label.
        default: label for leaves no pattern matches.

    Returns:
        ``labels(params) -> pytree of str``.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jaxseq.train import labels_by_path
        >>> params = {"hidden": {"w": jnp.ones((2, 3)), "b": jnp.ones(3)},
        ...           "out": {"w": jnp.ones(3), "b": jnp.ones(())}}
        >>> labels = labels_by_path({r"^hidden/w": "gamma", r"^out/w": "beta"})
        >>> labels(params)["hidden"], labels(params)["out"]["w"]
        ({'b': 'unpenalized', 'w': 'gamma'}, 'beta')
    """
    compiled = [(re.compile(p), str(label)) for p, label in rules.items()]

    def labels(params: Any) -> Labels:
        def label(path, _leaf):
            name = path_name(path)
            for pattern, lab in compiled:
                if pattern.search(name):
                    return lab
            return default

        return jax.tree_util.tree_map_with_path(label, params)

    return labels


def _leaf_labels(params: Any, labels: Labels | LabelFn) -> list[str]:
    tree = labels(params) if callable(labels) else labels
    leaves, treedef = jax.tree.flatten(params)
    label_leaves, label_def = jax.tree.flatten(tree)
    if label_def != treedef:
        raise ValueError(
            "labels: expected one label per parameter leaf with the parameters' "
            f"structure {treedef}, got {label_def}."
        )
    bad = [lab for lab in label_leaves if not isinstance(lab, str)]
    if bad:
        raise TypeError(f"labels: expected str labels, got {bad[0]!r}.")
    return label_leaves


def _check_lambdas(lambdas: Mapping[str, float]) -> dict[str, float]:
    out = {}
    for label, lam in lambdas.items():
        if not float(lam) >= 0.0:
            raise ValueError(
                f"lambdas[{label!r}]: expected a penalty strength >= 0, got {lam!r}."
            )
        out[str(label)] = float(lam)
    return out


def ridge_penalty(
    params: Any, lambdas: Mapping[str, float], labels: Labels | LabelFn
) -> jax.Array:
    """``sum_g lambda_g * sum_{w in group g} w ** 2`` (add it to the loss).

    Args:
        params: a parameter pytree.
        lambdas: ``{label: lambda}``; groups absent from it are not penalised.
        labels: pytree of str labels, or a function ``params -> labels``.

    Returns:
        A scalar.

    Raises:
        ValueError: for a negative strength or labels with the wrong structure.
    """
    lambdas = _check_lambdas(lambdas)
    total = jnp.zeros((), jnp.result_type(float))
    for leaf, lab in zip(
        jax.tree.leaves(params), _leaf_labels(params, labels), strict=True
    ):
        if lambdas.get(lab, 0.0):
            total = total + lambdas[lab] * jnp.sum(jnp.square(leaf)).astype(total.dtype)
    return total


def ridge(
    lambdas: Mapping[str, float], labels: Labels | LabelFn
) -> optax.GradientTransformation:
    """Add the gradient ``2 lambda_g w`` of :func:`ridge_penalty` to the updates.

    Chain it *before* the optimiser: ``optax.chain(ridge(lambdas, labels), opt)``
    then follows the gradient of ``loss + ridge_penalty(params, lambdas, labels)``.
    Built from ``optax.masked`` and ``optax.add_decayed_weights`` (one per
    group with a non-zero strength); the optimiser's ``update`` must receive
    ``params``, which :func:`~jaxseq.train.make_train_step` always passes.

    Args:
        lambdas: ``{label: lambda}``.
        labels: pytree of str labels, or a function ``params -> labels``.

    Returns:
        An ``optax.GradientTransformation``.

    Examples:
        >>> import jax.numpy as jnp, optax
        >>> from jaxseq.train import ridge
        >>> params = {"beta": jnp.array([1.0, 2.0]), "gamma": jnp.array([3.0])}
        >>> labels = {"beta": "beta", "gamma": "gamma"}
        >>> t = ridge({"beta": 0.5, "gamma": 0.1}, labels)
        >>> zero = {"beta": jnp.zeros(2), "gamma": jnp.zeros(1)}
        >>> g, _ = t.update(zero, t.init(params), params)
        >>> g["beta"].tolist(), [round(v, 6) for v in g["gamma"].tolist()]
        ([1.0, 2.0], [0.6])
    """
    lambdas = _check_lambdas(lambdas)
    parts = []
    for lab, lam in lambdas.items():
        if lam == 0.0:
            continue

        def mask(params, lab=lab):
            flags = [x == lab for x in _leaf_labels(params, labels)]
            return jax.tree.unflatten(jax.tree.structure(params), flags)

        parts.append(optax.masked(optax.add_decayed_weights(2.0 * lam), mask))
    return optax.chain(*parts)
