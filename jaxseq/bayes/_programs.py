"""Compiled programs kept on disk, so that a later process skips tracing,
lowering *and* compiling them.

JAX's persistent compilation cache (:func:`jaxseq.bayes.driver.enable_compile_cache`)
skips XLA's compile only: its key is a hash of the lowered program, so every
process still traces and lowers the sampler's program (about 1-2 s of Python for
the Gibbs sweep) before it can look it up. Here a compiled program is saved whole
(:mod:`jax.experimental.serialize_executable`) under a key computed *without*
tracing (:func:`program_key`): everything the program depends on, i.e. the
versions of jax, jaxlib and jaxseq, a hash of the source of :mod:`jaxseq.bayes`
(so an edited checkout never loads a program of the old code), the static
configuration, the shapes, dtypes and shardings of the arguments and their pytree
structure, the devices, ``XLA_FLAGS``, the compiler options and every JAX
setting except those about caching and logging.

A file is ``MAGIC``, the key, the SHA-256 of the payload (one line each), then the
payload. :func:`read` checks all three before the payload is unpickled; a file
that fails a check (truncated, overwritten, another key) or does not load is
reported with a :class:`ProgramCacheWarning` and replaced by a fresh compile,
never used. Files are written atomically (a temporary file, then a rename).

Only executables that XLA has just compiled are saved (:func:`compile_fresh`):
one that JAX loaded from its own cache serialises without the code of some of
its kernels (jaxlib 0.10.2 on CPU; loading such a file failed at the first run
with ``Function ... not found``).

Like JAX's own cache, the folder holds machine code that the process runs: it
must be as trusted as the code itself (it is under the user's cache folder).
"""

from __future__ import annotations

import functools
import hashlib
import os
import secrets
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
from jax import monitoring
from jax.experimental import serialize_executable

__all__ = [
    "EVENT",
    "compile_fresh",
    "FOLDER",
    "MAGIC",
    "ProgramCacheWarning",
    "folder",
    "load",
    "program_key",
    "read",
    "save",
]

#: First line of every file (bumped when the layout changes).
MAGIC = b"jaxseq compiled program 1\n"
#: Subfolder of JAX's compilation cache folder that holds the programs.
FOLDER = "jaxseq-programs"
#: JAX monitoring event (a time span) of loading or saving a program, counted as
#: compile time by :func:`jaxseq.bayes.infer.compile_timer`.
EVENT = "/jaxseq/bayes/program_cache_duration"
#: JAX settings left out of the key: where and how caches and logs are kept
#: (they do not change the program).
_UNKEYED = ("cache", "log", "dump", "explain", "pprint")


class ProgramCacheWarning(UserWarning):
    """A cached program file was damaged or could not be read or written."""


def folder() -> Path | None:
    """``<jax_compilation_cache_dir>/jaxseq-programs``, or ``None`` when JAX's
    persistent compilation cache is off or not a local folder (e.g. ``gs://``)
    (then nothing is saved or loaded)."""
    base = jax.config.jax_compilation_cache_dir
    return Path(base) / FOLDER if base and "://" not in str(base) else None


@functools.cache
def _source_digest() -> str:
    """SHA-256 of the source files of :mod:`jaxseq.bayes` (names and bytes)."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted([*package.glob("*.py"), package.parent / "_typing.py"]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _leaf(a: Any) -> str:
    sharding = getattr(a, "sharding", None)
    return f"{jax.typeof(a)} {sharding!r}"


def program_key(name: str, static: Any, args: Any, options: dict, extra: str) -> str:
    """Hex key of program ``name`` with static configuration ``static`` (its
    ``repr`` must state all of it), traced arguments ``args`` (a pytree),
    compiler ``options`` and ``extra`` (e.g. the host CPU's tag); see the module
    docstring for what else it covers."""
    import jaxlib

    import jaxseq

    leaves, treedef = jax.tree.flatten(args)
    settings = {
        k: v
        for k, v in jax.config.values.items()
        if not any(word in k for word in _UNKEYED)
    }
    devices = jax.devices()
    parts = [
        MAGIC.decode(),
        name,
        f"jax {jax.__version__} jaxlib {jaxlib.__version__}",
        f"jaxseq {jaxseq.__version__} source {_source_digest()}",
        extra,
        f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')}",
        repr(sorted(options.items())),
        f"{devices[0].client.platform} {devices[0].client.platform_version}",
        repr([(d.id, d.device_kind) for d in devices]),
        repr(sorted(settings.items())),
        repr(static),
        str(treedef),
        *map(_leaf, leaves),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def compile_fresh(make_jit: Callable[[str], Any], name: str, *args: Any) -> Any:
    """``make_jit(name).lower(*args).compile()``, never taken from JAX's
    persistent cache (see the module docstring): ``name`` (the jitted function's
    name, which JAX's cache key covers, e.g. the program's key) makes a new
    program miss it; should it hit all the same (this file was lost, JAX's entry
    kept), the program is compiled again under a new random name."""
    hits = []

    def listener(event: str, **_: Any) -> None:
        if event == "/jax/compilation_cache/cache_hits":
            hits.append(event)

    monitoring.register_event_listener(listener)
    try:
        program = make_jit(name).lower(*args).compile()
        if hits:
            hits.clear()
            fresh = f"{name}_{secrets.token_hex(4)}"
            program = make_jit(fresh).lower(*args).compile()
        if hits:
            raise RuntimeError(f"{name}: JAX's cache answered a new program's name")
    finally:
        monitoring.unregister_event_listener(listener)
    return program


def _path(key: str) -> Path | None:
    base = folder()
    return None if base is None else base / f"{key}.bin"


def read(path: Path, key: str) -> bytes:
    """The payload of ``path`` after checking its first line, key and hash.

    Raises:
        ValueError: the file is not a complete program file of ``key``.
        OSError: it cannot be read.
    """
    data = path.read_bytes()
    magic, sep1, rest = data.partition(b"\n")
    stored_key, sep2, rest = rest.partition(b"\n")
    digest, sep3, payload = rest.partition(b"\n")
    if not (sep1 and sep2 and sep3) or magic + b"\n" != MAGIC:
        raise ValueError("not a jaxseq program file (or cut short)")
    if stored_key.decode(errors="replace") != key:
        raise ValueError("it holds another program")
    if hashlib.sha256(payload).hexdigest() != digest.decode(errors="replace"):
        raise ValueError("its contents do not match their SHA-256")
    return payload


def load(key: str, in_tree: Any, out_tree: Any) -> Any | None:
    """The compiled program saved under ``key`` (a :class:`jax.stages.Compiled`),
    or ``None`` when the cache is off, there is none, or the file is damaged or
    does not load (then with a :class:`ProgramCacheWarning`).

    Args:
        in_tree: pytree structure of ``(args, {})``. out_tree: of the output.
    """
    path = _path(key)
    if path is None or not path.exists():
        return None
    start = time.perf_counter()
    try:
        payload = read(path, key)
        program = serialize_executable.deserialize_and_load(payload, in_tree, out_tree)
    except Exception as err:  # noqa: BLE001  (any failure: recompile, never use)
        warnings.warn(
            f"{path}: ignored a damaged compiled-program cache file "
            f"({type(err).__name__}: {err}); compiling the program again.",
            ProgramCacheWarning,
            stacklevel=3,
        )
        return None
    monitoring.record_event_time_span(EVENT, start, time.perf_counter())
    return program


def save(key: str, program: Any) -> Path | None:
    """Save a :class:`jax.stages.Compiled` under ``key`` (atomically); returns
    the file, or ``None`` when the cache is off or the program cannot be
    serialised or written (then with a :class:`ProgramCacheWarning`)."""
    path = _path(key)
    if path is None:
        return None
    start = time.perf_counter()
    try:
        payload, _, _ = serialize_executable.serialize(program)
        digest = hashlib.sha256(payload).hexdigest()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".bin")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(MAGIC + key.encode() + b"\n" + digest.encode() + b"\n")
                f.write(payload)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except Exception as err:  # noqa: BLE001  (never fail a finished compile)
        warnings.warn(
            f"{path}: could not save the compiled program ({err}); the next "
            "process compiles it again.",
            ProgramCacheWarning,
            stacklevel=3,
        )
        return None
    monitoring.record_event_time_span(EVENT, start, time.perf_counter())
    return path
