"""Progress of the long runs of :mod:`jaxseq.bayes`: a "compiling" stage, then a bar.

Shown by default only where a person watches (stderr is a terminal and ``CI`` is
unset: :func:`jaxseq.cli.watched`); ``progress=False`` turns it off and
``progress=True`` forces it on. The display goes to stderr:

.. code-block:: text

    compiling ... done in 12.3 s
    sampling, 4 chains: 100%|██████████| 2000/2000 [00:04<00:00, 470.1it/s]

(an illustration, not a measurement).

:class:`Progress` is the host side. A compiled loop reports each step by
``jax.debug.callback(progress.tick)`` (no arguments: under ``vmap`` the
callback then runs once per step for all chains together, not once per chain);
the first tick ends the compiling stage. :class:`TickingKernel` adds that call
to any NumPyro ``MCMCKernel``; loops run from the host call :meth:`Progress.advance`.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import jax

__all__ = ["Progress", "TickingKernel", "chains_bar", "enabled"]


def enabled(progress: bool | None) -> bool:
    """``progress`` if given, else whether a person watches
    (:func:`jaxseq.cli.watched`)."""
    if progress is None:
        from ..cli import watched

        return watched()
    if not isinstance(progress, bool):
        raise TypeError(f"progress: expected True, False or None, got {progress!r}.")
    return progress


class Progress:
    """A "compiling ..." line, then a tqdm bar of ``total`` steps (on stderr).

    Use as a context manager. Args:
        total: steps of the bar.
        label: the bar's description (e.g. ``"sampling, 4 chains"``).
        warmup: the first ``warmup`` steps are labelled ``warmup_label`` instead.
        calls_per_step: :meth:`tick` calls that make one step (e.g. one per
            device when chains run in parallel under ``pmap``).
        unit: what a step is, for the bar's rate.
    """

    def __init__(
        self,
        total: int,
        label: str,
        *,
        warmup: int = 0,
        warmup_label: str = "",
        calls_per_step: int = 1,
        unit: str = "it",
    ):
        self.total, self.label, self.warmup = int(total), label, int(warmup)
        self.warmup_label = warmup_label or label
        self.calls_per_step, self.unit = max(int(calls_per_step), 1), unit
        self._calls = 0
        self._bar: Any = None
        self._lock = threading.Lock()
        self._start = 0.0
        self.compile_wall_s = float("nan")

    def __enter__(self) -> Progress:
        self._start = time.perf_counter()
        print("compiling ...", end="", file=sys.stderr, flush=True)
        return self

    def _open_bar(self) -> None:
        from tqdm import tqdm

        self.compile_wall_s = time.perf_counter() - self._start
        print(f" done in {self.compile_wall_s:.1f} s", file=sys.stderr, flush=True)
        desc = self.warmup_label if self.warmup > 0 else self.label
        self._bar = tqdm(total=self.total, desc=desc, unit=self.unit, file=sys.stderr)

    def tick(self) -> None:
        """One call from the compiled loop (thread safe)."""
        with self._lock:
            self._calls += 1
            if self._calls % self.calls_per_step == 0:
                self.advance(1)

    def advance(self, steps: int) -> None:
        """``steps`` more steps done (the first call ends the compiling stage)."""
        if self._bar is None:
            self._open_bar()
        bar = self._bar
        before = bar.n
        steps = min(steps, self.total - before)
        if before < self.warmup <= before + steps:
            bar.set_description(self.label, refresh=False)
        bar.update(steps)

    def compiled(self) -> None:
        """End the compiling stage before any step (an ahead-of-time compile)."""
        if self._bar is None:
            self._open_bar()

    def __exit__(self, *exc: Any) -> None:
        if self._bar is None:
            print(" stopped", file=sys.stderr, flush=True)
        else:
            self._bar.close()


def chains_bar(
    num_warmup: int,
    num_samples: int,
    num_chains: int,
    *,
    sequential: bool = False,
    calls_per_step: int = 1,
) -> Progress:
    """The bar of an MCMC run: ``num_warmup + num_samples`` iterations per chain
    labelled "warm-up, 4 chains" then "sampling, 4 chains"; ``sequential``: the
    chains one after another (one bar over all, no warm-up stage)."""
    chains = f"{num_chains} chain{'s' if num_chains > 1 else ''}"
    total, warmup = num_warmup + num_samples, num_warmup
    if sequential:
        total, warmup, chains = total * num_chains, 0, chains + " in turn"
    return Progress(
        total,
        f"sampling, {chains}",
        warmup=warmup,
        warmup_label=f"warm-up, {chains}",
        calls_per_step=calls_per_step,
    )


class TickingKernel:
    """A NumPyro ``MCMCKernel`` that is ``kernel`` plus a host callback
    ``tick()`` after each step (everything else is delegated to ``kernel``)."""

    def __init__(self, kernel: Any, tick: Any):
        self._kernel, self._tick = kernel, tick

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_kernel", "_tick"):
            raise AttributeError(name)
        return getattr(self._kernel, name)

    def sample(self, state: Any, model_args: Any, model_kwargs: Any) -> Any:
        state = self._kernel.sample(state, model_args, model_kwargs)
        jax.debug.callback(self._tick)
        return state
