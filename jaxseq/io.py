"""Saving and loading whole models: configuration, parameters and vocabulary.

A saved model is a directory that plain tools can inspect, written without
pickle and read with ``numpy.load(..., allow_pickle=False)``, so loading an
untrusted file never runs code:

- ``jaxseq.json``: the format name and version, the user's ``config`` (e.g. a
  :func:`layer_config`), the parameter pytree's structure (NamedTuple type names,
  tuples, lists, dicts) with each leaf's shape and dtype, ``extra`` metadata.
- ``params.npz``: one array per leaf, named by its path (``params[0].fw.w_x``).
- ``vocab.json`` (optional): a :class:`jaxseq.text.Vocabulary` in its own
  versioned format, or a plain ``token -> id`` mapping.

Only NamedTuple types that jaxseq knows (its cells' and layers' parameter and
carry types) or that the caller passes in ``types=`` are rebuilt; the file names
a type, it never imports one. Unknown format versions, missing or extra arrays,
and shape or dtype mismatches raise ``ValueError`` naming the leaf path with the
expected and received values.

Examples:
    >>> import tempfile, os, jax
    >>> import jaxseq
    >>> from jaxseq import io
    >>> layer = jaxseq.stack(jaxseq.cells.gru(4), num_layers=2, bidirectional=True)
    >>> params = layer.init(jax.random.key(0), 3)
    >>> path = os.path.join(tempfile.mkdtemp(), "model")
    >>> io.save_layer(path, layer, params, vocab={"a": 2, "b": 3})
    >>> layer2, params2 = io.load_layer(path)
    >>> layer2.bidirectional, type(params2[1].bw).__name__
    (True, 'GRUParams')
    >>> io.load(path).vocab
    {'a': 2, 'b': 3}
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import cells as _cells
from .cells._dropout import RecurrentDropoutCarry, recurrent_dropout
from .layers import BiCarry, BiParams, RNNLayer, stack

#: Errors of a damaged ``params.npz`` member: a bad CRC-32 or header
#: (``BadZipFile``), a damaged compressed stream, a cut ``.npy`` header or body.
_ARRAY_ERRORS = (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError)

FORMAT_NAME = "jaxseq.model"
#: Written into every saved model; :func:`load` refuses any other value.
FORMAT_VERSION = 1
CONFIG_FILE = "jaxseq.json"
ARRAYS_FILE = "params.npz"
VOCAB_FILE = "vocab.json"

#: NamedTuple types rebuilt by name on load (extend per call with ``types=``).
KNOWN_TYPES: dict[str, type] = {
    t.__name__: t
    for t in (
        _cells.LSTMParams,
        _cells.LSTMCarry,
        _cells.GRUParams,
        _cells.GRUCarry,
        _cells.ElmanParams,
        _cells.ElmanCarry,
        RecurrentDropoutCarry,
        BiParams,
        BiCarry,
    )
}


class Saved(NamedTuple):
    """What :func:`load` returns.

    Attributes:
        config: the ``config`` dict given to :func:`save` (JSON: tuples are lists).
        params: the parameter pytree, leaves as ``jax.Array`` in their saved dtype
            (64-bit leaves follow ``jax_enable_x64``, as any ``jnp.asarray``).
        vocab: a :class:`jaxseq.text.Vocabulary`, a ``dict`` or ``None``.
        extra: the ``extra`` metadata dict (``{}`` when none was given).
        version: the file's format version.
    """

    config: dict[str, Any]
    params: Any
    vocab: Any
    extra: dict[str, Any]
    version: int


# ----------------------------------------------------------------- pytree <-> JSON
def _encode(tree: Any, path: str, arrays: dict[str, np.ndarray]) -> Any:
    """JSON description of ``tree``; its leaves go into ``arrays`` by path."""
    if tree is None:
        return {"none": None}
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        named = zip(tree._fields, tree, strict=True)
        fields = {f: _encode(v, f"{path}.{f}", arrays) for f, v in named}
        return {"namedtuple": type(tree).__name__, "fields": fields}
    if isinstance(tree, (tuple, list)):
        kind = "tuple" if isinstance(tree, tuple) else "list"
        return {kind: [_encode(v, f"{path}[{i}]", arrays) for i, v in enumerate(tree)]}
    if isinstance(tree, Mapping):
        bad = [k for k in tree if not isinstance(k, str)]
        if bad:
            raise TypeError(f"{path}: expected string dict keys, got {bad[0]!r}.")
        items = {k: _encode(v, f"{path}[{k!r}]", arrays) for k, v in tree.items()}
        return {"dict": items}
    return _encode_leaf(tree, path, arrays)


def _encode_leaf(leaf: Any, path: str, arrays: dict[str, np.ndarray]) -> Any:
    if not isinstance(leaf, (jax.Array, np.ndarray, np.generic, int, float, bool)):
        raise TypeError(
            f"{path}: expected an array leaf, got {type(leaf).__name__}. Save plain "
            "arrays (e.g. RNN.functional() for an nnx module)."
        )
    if isinstance(leaf, jax.Array) and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        raise TypeError(f"{path}: PRNG keys are not saved; store jax.random.key_data.")
    a = np.asarray(leaf)
    dtype = str(a.dtype)
    if a.dtype.kind == "V":  # bfloat16 and other ml_dtypes: store the raw bits
        a = a.view(f"uint{8 * a.dtype.itemsize}")
    arrays[path] = a
    return {"leaf": path, "shape": list(a.shape), "dtype": dtype}


def _decode(spec: Any, arrays: Any, types: Mapping[str, type], used: set[str]) -> Any:
    if not isinstance(spec, dict) or len(spec) not in (1, 2, 3):
        raise ValueError(f"unexpected pytree entry {spec!r:.80}.")
    if "leaf" in spec:
        return _decode_leaf(spec, arrays, used)
    if "none" in spec:
        return None
    if "tuple" in spec or "list" in spec:
        specs = spec["tuple"] if "tuple" in spec else spec["list"]
        items = [_decode(s, arrays, types, used) for s in specs]
        return tuple(items) if "tuple" in spec else items
    if "dict" in spec:
        return {k: _decode(s, arrays, types, used) for k, s in spec["dict"].items()}
    name = spec.get("namedtuple")
    if name not in types:
        raise ValueError(
            f"pytree: unknown NamedTuple type {name!r}; jaxseq rebuilds only "
            f"{sorted(types)}. Pass types={{{name!r}: YourType}} to load."
        )
    cls, fields = types[name], spec["fields"]
    if tuple(fields) != tuple(cls._fields):
        raise ValueError(
            f"pytree: {name} expected fields {list(cls._fields)}, got {list(fields)}."
        )
    return cls(**{k: _decode(s, arrays, types, used) for k, s in fields.items()})


def _decode_leaf(spec: dict[str, Any], arrays: Any, used: set[str]) -> jax.Array:
    path, shape, dtype = spec["leaf"], tuple(spec["shape"]), jnp.dtype(spec["dtype"])
    if path not in arrays.files:
        raise ValueError(f"{path}: missing from {ARRAYS_FILE}.")
    try:
        a = arrays[path]
    except _ARRAY_ERRORS as err:  # a damaged member, or an object (pickle) array
        file = getattr(getattr(arrays, "zip", None), "filename", None) or ARRAYS_FILE
        raise ValueError(
            f"{file}: array {path} is unreadable ({type(err).__name__}: {err}); the "
            "file is corrupt or was not written by jaxseq. Save the model again."
        ) from err
    if tuple(a.shape) != shape:
        raise ValueError(
            f"{path}: expected shape {shape} (recorded in {CONFIG_FILE}), got "
            f"{tuple(a.shape)} in {ARRAYS_FILE}."
        )
    stored = np.dtype(f"uint{8 * dtype.itemsize}") if dtype.kind == "V" else dtype
    if a.dtype != stored:
        raise ValueError(
            f"{path}: expected dtype {dtype} (recorded in {CONFIG_FILE}), got "
            f"{a.dtype} in {ARRAYS_FILE}."
        )
    if dtype.kind == "V":
        a = a.view(dtype)
    used.add(path)
    return jnp.asarray(a)


# ----------------------------------------------------------------- save / load
def _json_dumps(value: Any, name: str) -> str:
    try:
        return json.dumps(value, indent=1, ensure_ascii=False)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name}: expected JSON-serialisable values ({err}).") from err


def save(
    path: str | os.PathLike[str],
    *,
    config: Mapping[str, Any],
    params: Any,
    vocab: Any = None,
    extra: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> None:
    """Save a model to the directory ``path`` (see the module notes).

    Args:
        path: directory to create. It is written next to its final place and
            renamed, so an interrupted save leaves no half-written model.
        config: JSON-serialisable architecture description (for a jaxseq layer,
            ``{"layer": layer_config(layer, params), ...}``).
        params: pytree of arrays: tuples, lists, dicts with string keys, ``None``
            and jaxseq's parameter NamedTuples (or those passed to ``load``).
        vocab: optional :class:`jaxseq.text.Vocabulary` or ``token -> id``
            mapping.
        extra: optional JSON-serialisable metadata (metrics, seeds, ...).
        overwrite: replace an existing saved model at ``path``.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is false, or it exists
            and is not a saved jaxseq model (never deleted).
        TypeError: a leaf is not an array, or ``config``/``extra``/``vocab`` is
            not JSON-serialisable.
    """
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    tree = _encode(params, "params", arrays)
    header = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "config": dict(config),
        "params": tree,
        "extra": dict(extra or {}),
    }
    vocab_kind, vocab_text = _vocab_payload(vocab)
    header["vocab"] = vocab_kind
    text = _json_dumps(header, "config/extra")
    if path.exists() and (not overwrite or not (path / CONFIG_FILE).is_file()):
        raise FileExistsError(
            f"path: {os.fspath(path)} exists"
            + (
                "; pass overwrite=True to replace it."
                if not overwrite
                else f" and holds no {CONFIG_FILE}: refusing to replace it."
            )
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        (tmp / CONFIG_FILE).write_text(text, encoding="utf-8")
        np.savez(tmp / ARRAYS_FILE, **arrays)
        if vocab_text is not None:
            vocab_text(tmp / VOCAB_FILE)
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _vocab_payload(vocab: Any) -> tuple[str | None, Any]:
    """``(kind, writer)`` for the vocabulary: ``writer(path)`` writes it."""
    if vocab is None:
        return None, None
    from .text import Vocabulary, save_vocabulary

    if isinstance(vocab, Vocabulary):
        return "jaxseq.text.Vocabulary", lambda p: save_vocabulary(vocab, p)
    if isinstance(vocab, Mapping):
        if not all(isinstance(k, str) and isinstance(v, int) for k, v in vocab.items()):
            raise TypeError("vocab: expected a mapping of str tokens to int ids.")
        text = _json_dumps(dict(vocab), "vocab")
        return "mapping", lambda p: Path(p).write_text(text, encoding="utf-8")
    raise TypeError(
        "vocab: expected a jaxseq.text.Vocabulary or a mapping token -> id, got "
        f"{type(vocab).__name__}."
    )


def _read_header(path: Path) -> dict[str, Any]:
    file = path / CONFIG_FILE
    if not file.is_file():
        raise FileNotFoundError(
            f"{os.fspath(path)}: no {CONFIG_FILE}; not a saved model."
        )
    try:
        header = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{file}: corrupt JSON ({err}).") from err
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise ValueError(f"{file}: not a saved jaxseq model (format {FORMAT_NAME!r}).")
    version = header.get("version")
    if version != FORMAT_VERSION:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        raise ValueError(
            f"{file}: format version: expected {FORMAT_VERSION}, got {version!r}"
            + (
                " (written by a newer jaxseq; upgrade jaxseq to read it)."
                if newer
                else "."
            )
        )
    missing = {"config", "params", "extra", "vocab"} - set(header)
    if missing:
        raise ValueError(f"{file}: lacks the fields {sorted(missing)}.")
    return header


def load(
    path: str | os.PathLike[str],
    *,
    like: Any = None,
    types: Mapping[str, type] | None = None,
) -> Saved:
    """Load a model saved by :func:`save`.

    Args:
        path: the model directory.
        like: optional pytree (arrays or ``jax.ShapeDtypeStruct``, e.g. from
            ``jax.eval_shape``) the parameters must match in structure and shapes.
        types: extra NamedTuple types by name, for parameter trees that use
            types other than jaxseq's.

    Returns:
        A :class:`Saved` ``(config, params, vocab, extra, version)``.

    Raises:
        FileNotFoundError: ``path`` holds no saved model.
        ValueError: an unknown format version, corrupt files, missing or
            unexpected arrays, or a shape/dtype mismatch (naming the leaf path,
            the expected and the received value).
    """
    path = Path(path)
    header = _read_header(path)
    all_types = {**KNOWN_TYPES, **dict(types or {})}
    file = path / ARRAYS_FILE
    if not file.is_file():
        raise FileNotFoundError(
            f"{file}: no such file; the saved model in {os.fspath(path)} is "
            f"incomplete ({CONFIG_FILE} without {ARRAYS_FILE}). Save it again."
        )
    with open(file, "rb") as fh:  # closed even if np.load fails
        try:
            arrays = np.load(fh, allow_pickle=False)
        except Exception as err:  # zipfile/format errors of a damaged file
            raise ValueError(
                f"{file}: unreadable ({type(err).__name__}: {err}); the file is "
                "truncated or corrupt. Save the model again."
            ) from err
        used: set[str] = set()
        try:
            params = _decode(header["params"], arrays, all_types, used)
        except (KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"{path / CONFIG_FILE}: bad pytree ({err}).") from err
        unexpected = sorted(set(arrays.files) - used)
    if unexpected:
        raise ValueError(
            f"{file}: unexpected arrays {unexpected[:5]} (not in {CONFIG_FILE})."
        )
    if like is not None:
        check_like(params, like)
    vocab = _load_vocab(path, header["vocab"])
    return Saved(header["config"], params, vocab, header["extra"], FORMAT_VERSION)


def _load_vocab(path: Path, kind: str | None) -> Any:
    if kind is None:
        return None
    file = path / VOCAB_FILE
    if kind not in ("jaxseq.text.Vocabulary", "mapping"):
        raise ValueError(f"{path / CONFIG_FILE}: unknown vocab kind {kind!r}.")
    if not file.is_file():
        raise FileNotFoundError(
            f"{file}: no such file, but {CONFIG_FILE} records a vocabulary; the "
            "saved model is incomplete. Save it again."
        )
    if kind == "jaxseq.text.Vocabulary":
        from .text import load_vocabulary

        return load_vocabulary(file)
    try:
        mapping = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{file}: corrupt JSON ({err}).") from err
    if not isinstance(mapping, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in mapping.values()
    ):
        raise ValueError(f"{file}: expected a JSON object of token -> int id.")
    return mapping


def check_like(params: Any, like: Any) -> None:
    """Raise ``ValueError`` unless ``params`` matches ``like`` in structure and
    leaf shapes, naming the first differing leaf path."""
    if jax.tree.structure(params) != jax.tree.structure(like):
        raise ValueError(
            f"params: expected the structure {jax.tree.structure(like)}, got "
            f"{jax.tree.structure(params)}."
        )
    got = jax.tree_util.tree_flatten_with_path(params)[0]
    for (p, a), e in zip(got, jax.tree.leaves(like), strict=True):
        if tuple(np.shape(a)) != tuple(np.shape(e)):
            raise ValueError(
                f"params{jax.tree_util.keystr(p)}: expected shape "
                f"{tuple(np.shape(e))}, got {tuple(np.shape(a))}."
            )


# ----------------------------------------------------------------- jaxseq layers
_FACTORIES = _cells.BY_NAME
_ACTIVATIONS = ("tanh", "relu", "sigmoid", "identity")


def layer_config(layer: RNNLayer, params: Sequence[Any]) -> dict[str, Any]:
    """A JSON-serialisable description of ``layer``, enough to rebuild it with
    :func:`layer_from_config` (the input size and dtype are read from ``params``).

    Raises:
        ValueError: for a cell jaxseq cannot rebuild by name (a custom cell, or an
            Elman cell with a callable activation).
    """
    first = params[0].fw if layer.bidirectional else params[0]
    cells = []
    for i, (cell, p) in enumerate(zip(layer.cells, params, strict=True)):
        p = p.fw if layer.bidirectional else p
        options = dict(cell.options)
        if (
            cell.name not in _FACTORIES
            or options.get("activation", "tanh") not in _ACTIVATIONS
        ):
            raise ValueError(
                f"layer.cells[{i}]: expected a built-in cell ({', '.join(_FACTORIES)}; "
                f"elman with activation in {_ACTIVATIONS}), "
                f"got {cell.name!r} {options}."
            )
        dtype = str(jax.tree.leaves(p)[0].dtype)
        cells.append(
            {
                "name": cell.name,
                "hidden_size": cell.hidden_size,
                "options": options,
                "dtype": dtype,
            }
        )
    return {
        "input_size": int(first.w_x.shape[0]),
        "cells": cells,
        "bidirectional": layer.bidirectional,
        "merge": layer.merge,
        "dropout": layer.dropout,
        "reverse": layer.reverse,
    }


def layer_from_config(config: Mapping[str, Any]) -> RNNLayer:
    """Rebuild the :class:`~jaxseq.layers.RNNLayer` described by
    :func:`layer_config` (cells by ``name`` + ``options`` + ``hidden_size``).

    Raises:
        ValueError: when ``config`` lacks a field or holds a bad value (the
            message names the field, e.g. ``config.cells[1].hidden_size``).
    """
    _check_layer_config(config)
    cells = []
    for i, c in enumerate(config["cells"]):
        if c.get("name") not in _FACTORIES:
            raise ValueError(
                f"config.cells[{i}].name: expected one of {sorted(_FACTORIES)}, got "
                f"{c.get('name')!r}."
            )
        options = dict(c.get("options", {}))
        rate = options.pop("recurrent_dropout", None)
        cell = _FACTORIES[c["name"]](
            int(c["hidden_size"]), dtype=jnp.dtype(c.get("dtype", "float32")), **options
        )
        if rate is not None:
            cell = recurrent_dropout(cell, rate)
        cells.append(cell)
    return stack(
        cells,
        bidirectional=bool(config.get("bidirectional", False)),
        merge=config.get("merge", "concat"),
        dropout=float(config.get("dropout", 0.0)),
        reverse=bool(config.get("reverse", False)),
    )


def _check_layer_config(config: Any) -> None:
    """The structure :func:`layer_from_config` reads, with clear errors."""
    if not isinstance(config, Mapping):
        raise ValueError(f"config: expected a dict, got {type(config).__name__}.")
    cells = config.get("cells")
    if not isinstance(cells, list) or not cells:
        raise ValueError(f"config.cells: expected a non-empty list, got {cells!r:.80}.")
    for i, c in enumerate(cells):
        if not isinstance(c, Mapping):
            raise ValueError(f"config.cells[{i}]: expected a dict, got {c!r:.80}.")
        hidden = c.get("hidden_size")
        if not isinstance(hidden, int) or isinstance(hidden, bool) or hidden < 1:
            raise ValueError(
                f"config.cells[{i}].hidden_size: expected an int >= 1, got {hidden!r}."
            )
        if not isinstance(c.get("options", {}), Mapping):
            raise ValueError(
                f"config.cells[{i}].options: expected a dict, got {c['options']!r:.80}."
            )


def save_layer(
    path: str | os.PathLike[str],
    layer: RNNLayer,
    params: Sequence[Any],
    *,
    vocab: Any = None,
    extra: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> None:
    """:func:`save` a jaxseq layer: ``config={"layer": layer_config(...)}``."""
    config = {"layer": layer_config(layer, params)}
    save(
        path,
        config=config,
        params=params,
        vocab=vocab,
        extra=extra,
        overwrite=overwrite,
    )


def load_layer(path: str | os.PathLike[str]) -> tuple[RNNLayer, Any]:
    """Load what :func:`save_layer` wrote: the rebuilt layer and its parameters,
    checked leaf by leaf against ``layer.init``'s shapes. :func:`load` gives the
    vocabulary and metadata too."""
    saved = load(path)
    if "layer" not in saved.config:
        raise ValueError(f"{os.fspath(path)}: config has no 'layer' entry.")
    try:
        layer = layer_from_config(saved.config["layer"])
        size = saved.config["layer"].get("input_size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"config.input_size: expected an int >= 1, got {size!r}.")
    except (ValueError, TypeError) as err:
        raise ValueError(f"{Path(path) / CONFIG_FILE}: {err}") from err
    like = jax.eval_shape(lambda k: layer.init(k, size), jax.random.key(0))
    check_like(saved.params, like)
    return layer, saved.params
