"""Host (CPU) memory behaviour that decides RNN training speed on CPU.

XLA's CPU runtime allocates a program's temporary and output buffers afresh on
every call and frees them afterwards. glibc's ``malloc`` serves blocks larger than
its mmap threshold (32 MiB at most) with a fresh ``mmap`` and gives them back to
the kernel on ``free``, so every call of a large program touches new pages: one
page fault per 4 KiB, each zeroing its page. For the gradient of a recurrent
layer, whose residuals are ``O(T B H)`` numbers, that is a large share of the
time: measured on one core at ``B=128, T=200, I=128, H=256``, an LSTM
forward+backward call took 444 ms with the default allocator and 334 ms after
:func:`retain_memory` (every JAX library in the process and PyTorch gain too;
see ``benchmarks/results/speed_retain.md``).

:func:`retain_memory` tells glibc to serve every block from its heap, which it
keeps, and to use a single arena for all threads (XLA allocates on its own worker
threads, whose arenas would otherwise hand whole heaps back to the kernel). Freed
memory then stays in the process and the next call reuses it without faults.

The cost: the process holds on to its peak host memory (freed blocks are reused,
not returned to the system), and malloc-heavy multi-threaded code shares one
arena. That suits a training or benchmark process; it is why jaxseq never does
it on import, only when asked (the ``jaxseq`` command line asks for it).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
import warnings

__all__ = ["backend_started", "retain_memory"]

# mallopt(3) parameter numbers (glibc's <malloc.h>)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
#: the largest value mallopt's ``int`` takes: free memory at the top of the heap
#: is given back to the system only beyond this much (2 GiB)
_INT_MAX = 2**31 - 1

_applied = False


def _libc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") else None


def backend_started() -> bool:
    """Whether JAX has started its backends (after which :func:`retain_memory`
    comes too late for XLA's worker threads)."""
    try:
        from jax._src import xla_bridge
    except ImportError:  # pragma: no cover - jax is a dependency
        return False
    started = getattr(xla_bridge, "backends_are_initialized", None)
    return bool(started()) if started is not None else False


def retain_memory(*, arenas: int = 1) -> bool:
    """Keep freed host memory in the process so XLA's per-call buffers reuse it.

    Call it once, at the start of the program and before JAX runs its first
    computation (XLA's worker threads pick their malloc arena when they first
    allocate). A later call still stops ``mmap``/``munmap`` per large block but
    warns that the threads' arenas are already fixed, which loses part of the
    effect. Calling it again is harmless.

    Args:
        arenas: malloc arenas for all threads together (glibc's ``M_ARENA_MAX``);
            ``1`` (default) measured fastest for XLA's CPU runtime.

    Returns:
        ``True`` if the settings were applied (Linux with glibc), ``False`` where
        there is nothing to set (another C library or operating system); the
        program runs either way, only the speed differs.

    Raises:
        ValueError: ``arenas`` is not a positive integer.

    Examples:
        At the top of a training script, before anything runs on JAX::

            import jaxseq.host

            jaxseq.host.retain_memory()
    """
    global _applied
    if isinstance(arenas, bool) or not isinstance(arenas, int) or arenas < 1:
        raise ValueError(f"arenas: expected a positive int, got {arenas!r}")
    libc = _libc()
    if libc is None:
        return False
    if _applied:
        return True
    if backend_started():
        warnings.warn(
            "jaxseq.host.retain_memory() was called after JAX started its CPU "
            "backend: XLA's threads keep the malloc arenas they already use, so "
            "only part of the speed-up applies; call it before the first JAX "
            "computation",
            RuntimeWarning,
            stacklevel=2,
        )
    ok = (
        libc.mallopt(_M_MMAP_MAX, 0) == 1
        and libc.mallopt(_M_TRIM_THRESHOLD, _INT_MAX) == 1
        and libc.mallopt(_M_ARENA_MAX, arenas) == 1
    )
    _applied = ok
    return ok
