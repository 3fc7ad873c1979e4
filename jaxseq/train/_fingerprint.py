"""What makes a training run *this* run: the fingerprint :func:`~jaxseq.train.fit`
stores with its checkpoints and compares on resume, and the optimiser probe.

An Optax optimiser is a pair of closures, so its learning rate, schedule and
hyperparameters cannot be read off it. It is fingerprinted by what it does: its
update of a fixed probe gradient (a deterministic direction ``d`` of global norm
1, scaled by ``s``). Each update ``u`` is summarised per parameter leaf by
``<u, d>`` and ``<u, u>`` (float32 sums), and two summaries agree when they are
equal to a relative ``1e-4``, so that the same run resumed on another CPU (whose
float results differ in the last bits) is recognised while a learning rate
changed by 0.01 % is not. The probes are

- on the initial optimiser state: ``s = 0`` (the gradient-free part: weight
  decay), then ``s = 1, 1e-3, 1e3`` chained, so that momentum and moment
  decays (seen from the second update on) and clipping thresholds between
  ``1e-3`` and ``1e3`` (seen by the large step) enter the summary;
- on each saved optimiser state (``s = 1``): the schedule's value and the
  moment estimates at the step the run would continue from.

The first probe also refuses an optimiser that does not descend: an update that
is not finite (a NaN learning rate), points uphill (``<u(1) - u(0), d> > 0``: a
negative learning rate), or is zero for 64 updates in a row (a zero learning
rate; gradient accumulation such as ``optax.MultiSteps`` emits zeros between
its updates).
Changes the probes cannot see: a schedule that differs only at steps the run has
not reached, and a clipping threshold outside ``[1e-3, 1e3]``. Hyperparameters
injected with ``optax.inject_hyperparams`` are also compared by name.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._weakcache import weak_cache
from ._integrity import array_digest, host, layout

#: relative tolerance of float summaries (probes, parameter values, float data)
RTOL = 1e-4
#: probe gradient scales: from the initial state (first, unchained), then chained
_INIT_SCALES = (0.0, 1.0, 1e-3, 1e3)


def _summary(x: np.ndarray, chunk: int = 1 << 20) -> list[float]:
    """Three float64 sums of a float array (compared to ``RTOL``): of ``x``,
    ``x**2`` and ``x`` times fixed pseudo-random weights (in chunks: bounded
    memory for large data)."""
    x = np.asarray(x).reshape(-1)
    sums = np.zeros(3)
    for start in range(0, x.size, chunk):
        c = x[start : start + chunk].astype(np.float64)
        i = np.arange(start, start + c.size, dtype=np.uint64)
        w = (i * np.uint64(2654435761)) % np.uint64(997) / 997.0 - 0.5
        sums += [c.sum(), c @ c, c @ w]
    return sums.tolist()


def _leaf(path: str, x: Any) -> dict[str, Any]:
    x = host(x)
    entry: dict[str, Any] = {"path": path, "dtype": x.dtype.name, "shape": x.shape}
    if np.issubdtype(x.dtype, np.inexact):
        entry["summary"] = _summary(x)
    elif x.dtype == object:  # e.g. texts that collate= featurises
        text = "\x00".join(map(repr, x.reshape(-1).tolist()))
        entry["sha256"] = hashlib.sha256(text.encode()).hexdigest()
    else:  # integers, booleans, strings, key data: exact
        entry["sha256"] = array_digest(x)
    return entry


def _leaves(tree: Any) -> list[dict[str, Any]]:
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return [_leaf(jax.tree_util.keystr(p), x) for p, x in flat]


# ----------------------------------------------------------------------- probe
def _directions(leaves: list) -> list[jax.Array]:
    """The probe direction: a fixed pattern per leaf, global norm 1 (zeros on
    integer leaves)."""
    dirs = [
        jnp.sin(0.7 * jnp.arange(x.size, dtype=jnp.float32) + 1.3 * i + 0.1).reshape(
            x.shape
        )
        if jnp.issubdtype(x.dtype, jnp.inexact)
        else jnp.zeros(x.shape, jnp.float32)
        for i, x in enumerate(leaves)
    ]
    norm = jnp.sqrt(sum(jnp.sum(d * d) for d in dirs))
    return [d / jnp.maximum(norm, 1e-30) for d in dirs]


@jax.jit
def _probe_gradient(params: Any, scale: jax.Array) -> Any:
    leaves, treedef = jax.tree.flatten(params)
    dirs = _directions(leaves)
    return treedef.unflatten(
        [(d * scale).astype(x.dtype) for d, x in zip(dirs, leaves, strict=True)]
    )


@jax.jit
def _probe_stats(updates: Any, params: Any) -> jax.Array:
    """Per leaf ``[<u, d>, <u, u>]`` (float32 sums)."""
    leaves, treedef = jax.tree.flatten(params)
    us = treedef.flatten_up_to(updates)
    us = [jnp.asarray(u, jnp.float32) for u in us]
    rows = [
        jnp.stack([jnp.vdot(u, d), jnp.vdot(u, u)])
        for u, d in zip(us, _directions(leaves), strict=True)
    ]
    return jnp.stack(rows).astype(jnp.float32) if rows else jnp.zeros((0, 2))


#: one jitted update per live ``optimizer.update`` (held weakly)
_cached_update = weak_cache(jax.jit)


def probe(optimizer, opt_state, params, scale: float) -> tuple[np.ndarray, Any]:
    """``optimizer``'s update ``u`` of the probe gradient ``g = scale * d``: per
    parameter leaf ``[<u, d>, <u, u>]`` (``[L, 2]``, float64 on the host) and
    the new optimiser state. The gradient and the sums are compiled once per
    parameter layout; the update once per optimiser."""
    update = _cached_update(optimizer.update)
    grads = _probe_gradient(params, jnp.float32(scale))
    updates, opt_state = update(grads, opt_state, params)
    return host(_probe_stats(updates, params)).astype(np.float64), opt_state


def initial_probe(optimizer, opt_state, params) -> list[list[list[float]]]:
    """The probes from the initial state; raises ``ValueError`` naming
    ``optimizer`` when its updates are not finite, go uphill or are all zero."""
    zero, _ = probe(optimizer, opt_state, params, _INIT_SCALES[0])
    out, state = [zero], opt_state
    for scale in _INIT_SCALES[1:]:
        stats, state = probe(optimizer, state, params, scale)
        out.append(stats)
    if not all(np.isfinite(s).all() for s in out):
        raise ValueError(
            "optimizer: expected finite updates, got a non-finite update of a probe "
            "gradient (a NaN or infinite learning rate or hyperparameter?)."
        )
    # <u(g) - u(0), d> for the first update (u(0): weight decay and the like);
    # without a gradient-free part, every update of the same direction must
    # descend (this sees a schedule that turns negative after count 0)
    uphill = float(out[1][:, 0].sum() - zero[:, 0].sum())
    if not zero.any():
        uphill = max(uphill, *(float(s[:, 0].sum()) for s in out[1:]))
    if uphill > 0:
        raise ValueError(
            "optimizer: expected updates that descend (fit minimises loss_fn), got "
            f"an update u with <u, g> = {uphill:+.3g} > 0 for a probe gradient g "
            "(a negative learning rate?)."
        )
    if all(not s[:, 1].any() for s in out[1:]) and not _moves_later(
        optimizer, state, params
    ):
        raise ValueError(
            "optimizer: expected updates that move the parameters, got zero updates "
            f"for {_MOVE_WITHIN} probe gradients in a row (a zero learning rate?)."
        )
    return [s.tolist() for s in out]


#: updates in a row that may all be zero (gradient accumulation such as
#: optax.MultiSteps applies every k-th update only)
_MOVE_WITHIN = 64


def _moves_later(optimizer, state, params) -> bool:
    for _ in range(_MOVE_WITHIN - len(_INIT_SCALES) + 1):
        stats, state = probe(optimizer, state, params, 1.0)
        if stats[:, 1].any():
            return True
    return False


def resume_probe(optimizer, state) -> list[list[float]]:
    """The probe (``s = 1``) from a train state's optimiser state."""
    return probe(optimizer, state.opt_state, state.params, 1.0)[0].tolist()


# ------------------------------------------------------------------ fingerprint
def _structure(tree: Any) -> str:
    return re.sub(r" at 0x[0-9a-fA-F]+", "", str(jax.tree.structure(tree)))


def _hyperparams(opt_state: Any) -> dict[str, float]:
    flat = jax.tree_util.tree_flatten_with_path(opt_state)[0]
    return {
        jax.tree_util.keystr(p): float(host(x))
        for p, x in flat
        if any(getattr(k, "name", None) == "hyperparams" for k in p) and np.ndim(x) == 0
    }


def _data(tree: Any) -> list[dict[str, Any]] | None:
    return None if tree is None else _leaves(tree)


def fingerprint(state, train_data, valid_data, options, probe) -> dict[str, Any]:
    """The run's fingerprint (JSON): optimiser (structure, injected
    hyperparameters, ``probe`` from :func:`initial_probe`), initial parameters,
    key, data and ``options``."""
    return {
        "options": dict(options),
        "params": _leaves(state.params),
        "optimizer_state": _structure(state.opt_state),
        "optimizer_arrays": [
            {k: v for k, v in e.items() if k in ("path", "dtype", "shape")}
            for e in _leaves(state.opt_state)
        ],
        "hyperparams": _hyperparams(state.opt_state),
        "probe": probe,
        "key": {
            "impl": str(jax.random.key_impl(state.key)),
            "sha256": array_digest(host(jax.random.key_data(state.key))),
        },
        "train_data": _data(train_data),
        "valid_data": _data(valid_data),
    }


def close(a: Any, b: Any) -> bool:
    """Float summaries equal to ``RTOL`` (relative to the largest entry)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return False
    scale = max(np.abs(a).max(initial=0.0), np.abs(b).max(initial=0.0))
    return bool(np.allclose(a, b, rtol=RTOL, atol=RTOL * scale + 1e-30, equal_nan=True))


def _norms(stats: Any) -> str:
    return ", ".join(
        f"{np.sqrt(max(np.asarray(s).reshape(-1, 2)[:, 1].sum(), 0.0)):.4g}"
        for s in stats
    )


def _compare_leaves(name: str, old: list, new: list) -> list[str]:
    lo, ln = layout(old), layout(new)
    if [p for p, *_ in lo] != [p for p, *_ in ln]:
        return [f"{name}: other arrays ({len(lo)} in the checkpoint, {len(ln)} now)"]
    for a, b in zip(lo, ln, strict=True):
        if a != b:
            return [f"{name}{a[0]}: {a[1]} {a[2]} in the checkpoint, {b[1]} {b[2]} now"]
    for e, f in zip(old, new, strict=True):
        same = (
            close(e["summary"], f["summary"])
            if "summary" in e and "summary" in f
            else e.get("sha256") == f.get("sha256")
        )
        if not same:
            return [f"{name}{e['path']}: other values"]
    return []


def _compare_optimizer(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    if old.get("optimizer_state") != new["optimizer_state"] or old.get(
        "optimizer_arrays"
    ) != json_like(new["optimizer_arrays"]):
        return [
            "optimizer: another optimiser (state "
            f"{_classes(old.get('optimizer_state'))} in the checkpoint, "
            f"{_classes(new['optimizer_state'])} now)"
        ]
    out = []
    hp_old, hp_new = old.get("hyperparams", {}), new["hyperparams"]
    for name in sorted(set(hp_old) | set(hp_new)):
        a, b = hp_old.get(name, np.nan), hp_new.get(name, np.nan)
        if not close([a], [b]):
            out.append(
                f"optimizer hyperparameter {name}: {a:.6g} in the checkpoint, "
                f"{b:.6g} now"
            )
    if not close(old.get("probe"), new["probe"]):
        out.append(
            "optimizer: other updates of probe gradients of norms 0, 1, 1e-3, 1e3 "
            f"(update norms {_norms(old.get('probe', []))} in the checkpoint, "
            f"{_norms(new['probe'])} now): another learning rate, schedule or "
            "hyperparameter"
        )
    return out


def differences(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """What differs between a stored fingerprint and this run's, in words (the
    optimiser is compared only when the parameters have the same layout)."""
    if not isinstance(old, dict):
        return ["the checkpoint has no fingerprint"]
    out = []
    for name in sorted(set(old.get("options", {})) | set(new["options"])):
        a, b = old.get("options", {}).get(name), new["options"].get(name)
        if a != b:
            out.append(f"{name}: {a!r} in the checkpoint, {b!r} now")
    params = old.get("params", [])
    out += _compare_leaves("params", params, new["params"])
    if layout(params) == layout(new["params"]):
        out += _compare_optimizer(old, new)
    if old.get("key") != new["key"]:
        out.append("key: another PRNG key")
    for name in ("train_data", "valid_data"):
        a, b = old.get(name), new[name]
        if (a is None) != (b is None):
            given = lambda x: "none" if x is None else "given"  # noqa: E731
            out.append(f"{name}: {given(a)} in the checkpoint, {given(b)} now")
        elif a is not None:
            out += _compare_leaves(name, a, b)
    return out


def json_like(x: Any) -> Any:
    """``x`` as it reads back from JSON (tuples become lists)."""
    if isinstance(x, dict):
        return {k: json_like(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_like(v) for v in x]
    return x


def _classes(structure: Any) -> str:
    """The state classes in a tree structure's text, e.g. ``ScaleByAdamState,
    EmptyState`` (the leaf layout when there are none)."""
    names = re.findall(r"namedtuple\[(\w+)\]", str(structure))
    return ", ".join(names) if names else f"{len(str(structure))}-character tree"
