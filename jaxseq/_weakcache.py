"""A cache of values built from a user's function that does not keep it alive.

``functools.lru_cache`` over a user's function (a loss closing over a dataset, an
optimiser's update) holds it, and everything it closes over, until the entry is
evicted. :func:`weak_cache` holds the function weakly instead: the entry lives as
long as the function does. The value is built from a weak proxy of the function
(so the cache does not keep it alive through the value either) and handed out
bound to the function itself (so the caller's value keeps it alive while used).
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable, Hashable
from typing import Any


class Bound:
    """A cached value together with the function it was built from.

    Calls and attribute lookups (``lower``, ``_cache_size``, ...) go to
    ``value``; holding it keeps ``owner`` alive.
    """

    __slots__ = ("owner", "value")

    def __init__(self, value: Callable[..., Any], owner: Any) -> None:
        self.value = value
        self.owner = owner

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.value(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.value, name)

    def __repr__(self) -> str:
        return f"Bound({self.value!r})"


def _weak_proxy(fn: Callable[..., Any]) -> Callable[..., Any]:
    ref = weakref.WeakMethod(fn) if inspect.ismethod(fn) else weakref.ref(fn)

    def proxy(*args: Any, **kwargs: Any) -> Any:
        target = ref()
        if target is None:  # only reachable through a leaked proxy
            raise ReferenceError("the cached function no longer exists.")
        return target(*args, **kwargs)

    proxy.__name__ = getattr(fn, "__name__", "fn")
    proxy.__qualname__ = getattr(fn, "__qualname__", proxy.__name__)
    return proxy


def weak_cache(
    build: Callable[..., Callable[..., Any]],
) -> Callable[..., Callable[..., Any]]:
    """Cache ``build(fn, *options)`` per live ``fn`` and hashable ``options``.

    Returns ``cached(fn, *options)``: a :class:`Bound` of the value that
    ``build(proxy, *options)`` made, ``proxy`` calling ``fn`` through a weak
    reference. The same live ``fn`` and equal ``options`` give the same value
    (e.g. the same jitted function: no recompilation). A function that cannot be
    referenced weakly or hashed, or unhashable ``options``, get a fresh
    ``build(fn, *options)`` (no reuse).
    """
    table: weakref.WeakKeyDictionary[Any, dict[tuple[Hashable, ...], Any]] = (
        weakref.WeakKeyDictionary()
    )

    def cached(fn: Callable[..., Any], *options: Hashable) -> Callable[..., Any]:
        # a bound method is made afresh on each attribute access: key on its object
        key, entry = fn, options
        if inspect.ismethod(fn):
            key, entry = fn.__self__, (fn.__func__, *options)
        try:
            per_fn = table.get(key)
            if per_fn is None:
                per_fn = table[key] = {}
            value = per_fn.get(entry)
        except TypeError:  # not weakly referenceable, or unhashable
            return build(fn, *options)
        if value is None:
            value = per_fn[entry] = build(_weak_proxy(fn), *options)
        return Bound(value, fn)

    cached.cache = table  # type: ignore[attr-defined]
    return cached
