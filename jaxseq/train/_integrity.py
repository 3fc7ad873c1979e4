"""Checksums of a checkpoint: what :mod:`jaxseq.train.checkpoint` records with
every save and verifies on every restore.

The record (``meta``, JSON) carries, per saved item (``state``, ``best``), one
entry per array: its path in the pytree, dtype, shape and the sha256 of its
dtype, shape and bytes (:func:`array_digest`); and a
sha256 of the canonical JSON of the whole record (sorted keys, no spaces), so
that an edited record that still parses is caught too.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import jax
import numpy as np


def host(x: Any) -> np.ndarray:
    """A host copy (NumPy) of an array, also of a replicated multi-process one."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        x = x.addressable_data(0)
    return np.asarray(x)


def array_digest(x: np.ndarray) -> str:
    """sha256 of an array's dtype, shape and bytes."""
    x = np.ascontiguousarray(x)
    h = hashlib.sha256(f"{x.dtype.str}{x.shape}".encode())
    h.update(memoryview(x.reshape(-1).view(np.uint8)))
    return h.hexdigest()


class Damaged(Exception):
    """One step's checkpoint failed verification (the message says why)."""


def digests(tree: Any) -> list[dict[str, Any]]:
    """One entry per array: path, dtype, shape and sha256 (``None`` for an array
    sharded across processes, which no one process can read whole)."""
    out = []
    for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]:
        readable = not isinstance(x, jax.Array) or (
            x.is_fully_addressable or x.is_fully_replicated
        )
        out.append(
            {
                "path": jax.tree_util.keystr(path),
                "dtype": str(x.dtype),
                "shape": list(x.shape),
                "sha256": array_digest(host(x)) if readable else None,
            }
        )
    return out


def layout(entries: list[dict[str, Any]]) -> list[tuple[str, str, tuple[int, ...]]]:
    """``(path, dtype, shape)`` of each entry of :func:`digests` (or alike)."""
    return [(e["path"], e["dtype"], tuple(e["shape"])) for e in entries]


def tree_layout(tree: Any) -> list[tuple[str, str, tuple[int, ...]]]:
    """``(path, dtype, shape)`` of each array of a pytree."""
    return [
        (jax.tree_util.keystr(p), str(x.dtype), tuple(x.shape))
        for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]
    ]


def _canonical(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":")).encode()


def seal(meta: dict[str, Any], arrays: dict[str, Any]) -> dict[str, Any]:
    """The record to save: ``meta``, the array checksums and its own sha256."""
    record = json.loads(json.dumps({**meta, "_arrays": arrays}))
    record["_sha256"] = hashlib.sha256(_canonical(record)).hexdigest()
    return record


def unseal(record: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(meta, arrays)`` of a record read back; :class:`Damaged` if its checksum
    does not match or it has none."""
    if not isinstance(record, dict) or "_sha256" not in record:
        raise Damaged(
            "it has no checksums (written by a jaxseq before they were recorded), "
            "so it cannot be verified"
        )
    record = dict(record)
    digest = record.pop("_sha256")
    if hashlib.sha256(_canonical(record)).hexdigest() != digest:
        raise Damaged("its record (meta) does not match its checksum")
    return record, record.pop("_arrays")


def verify(item: str, expected: list[dict[str, Any]], tree: Any) -> None:
    """:class:`Damaged` naming the first array of ``tree`` whose sha256 is not
    the recorded one."""
    for e, g in zip(expected, digests(tree), strict=True):
        if e["sha256"] is not None and e["sha256"] != g["sha256"]:
            raise Damaged(f"array {item}{e['path']} does not match its checksum")


@contextlib.contextmanager
def quiet_reads() -> Iterator[None]:
    """While Orbax reads a checkpoint that may be damaged: a read that fails
    leaves TensorStore callbacks on a closed event loop and unretrieved asyncio
    tasks, which Python reports as "Exception ignored" tracebacks (hundreds of
    lines) on stderr, after the error was raised and handled here. After a
    failure they are flushed (``gc.collect``) and dropped before the hooks are
    put back; the failure itself is reported once, by the caller."""
    hook, log = sys.unraisablehook, logging.getLogger("asyncio")
    disabled = log.disabled
    sys.unraisablehook, log.disabled = (lambda unraisable: None), True
    try:
        yield
    except BaseException:
        gc.collect()
        raise
    finally:
        sys.unraisablehook, log.disabled = hook, disabled
