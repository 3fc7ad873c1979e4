"""How a fused run is executed: a function of the kernel, the sizes and the backend.

A :class:`~jaxseq._fused.SequenceKernel` carries a :class:`Tuning`: the sizes at
which its measured CPU preferences apply (which layout feeds the backward pass,
where autodiff of the reference loop beats the hand-written backward, the unroll
and input hoisting at batch one). :func:`plan` turns the tuning, the batch and
hidden sizes and the backend into a :class:`Plan`. Nothing is looked up by a
cell's name: a user's cell that reuses the LSTM kernel gets the LSTM plan, a new
kernel gets the generic one (``Tuning()``) until it states its own.

The tunings were measured on one CPU core (benchmarks/results/layouts.md and
layouts_masked_reverse.md; ``benchmarks/layouts.py`` retunes on a new machine).
The tunings come from an AMD CPU with AVX-512 (layouts_earlier_cpu.md). A rerun
on an AMD Zen 3 (AVX2 only; layouts.md, a loaded machine, then interleaved A/B
runs) found ``auto`` within 5% of the best strategy at most sizes but not one
rule to switch to: feature-major steps were 7-11% faster for the LSTM at
``B 128, H 256`` (gradient) and ``B 32, H 128`` (forward), and 14-22% slower at
``B 20, H 200`` (the word-level LM) and ``B 64, H 64``. Until a quiet rerun on
each CPU finds a rule that holds, one table serves every CPU (a speed rerun on an
AMD Zen 4 with AVX-512, speed_zen4.md, agreed with it except for the Elman forward at
large states, which two of the three CPUs run faster batch-major; the Elman
tuning now says so; one run on an AMD Zen 5, layouts_zen5.md, found the GRU's
gradient at H 8-16 faster feature-major than by autodiff, unconfirmed: identical
plans differed as much in that run); when one does, key
:class:`Tuning` on the CPU's vector width here (``benchmarks/_machine.py``
names it). On any other backend (GPU, TPU) the
plan is the plain, device-friendly one, unmeasured there: batch-major steps, the
hand-written backward, no input hoisting, ``unroll=1`` unless asked.
"""

from __future__ import annotations

from typing import NamedTuple

import jax

from ._layout import BATCH_MAJOR, FEATURE_MAJOR, Layout


class Tuning(NamedTuple):
    """A kernel's measured CPU preferences for ``impl="auto"`` (defaults: generic).

    Attributes:
        fm_hidden_grad: the loops that feed the backward pass run feature-major
            up to this hidden size (batch > 1).
        fm_hidden_primal: a forward-only call runs feature-major up to this
            hidden size,
        fm_primal_min_cells: or when one step's state holds at least this many
            numbers (``B * H``).
        autodiff_hidden: ``(low, high)``: the gradient is autodiff of the
            reference loop for ``low <= H <= high`` (batch > 1); ``(0, 0)``: never.
        autodiff_masked_reverse: whether that also holds when the loop runs
            backwards with ``lengths``.
        batch1_unroll: ``(forward-only, gradient)`` steps per loop iteration at
            batch 1 when the caller leaves ``unroll=None``.
        batch1_primal_hoist: at batch 1, a batch-major forward-only call projects
            the inputs of all steps before the loop.
    """

    fm_hidden_grad: int = 4
    fm_hidden_primal: int = 16
    fm_primal_min_cells: int = 32768
    autodiff_hidden: tuple[int, int] = (0, 0)
    autodiff_masked_reverse: bool = True
    batch1_unroll: tuple[int | bool, int | bool] = (1, 1)
    batch1_primal_hoist: bool = False


class Plan(NamedTuple):
    """How a fused run is executed (see :func:`plan`): handed whole to
    :func:`jaxseq._fused.fused_rnn` (``plan=``), which reads its layouts, unrolls
    and hoisting; ``autodiff`` is the runner's to act on (it passes the reference
    loop)."""

    hoist: bool  # input projection for all steps before the loop
    layout: Layout  # of the loops that feed the backward pass
    primal_layout: Layout  # of a forward-only call
    autodiff: bool  # gradient by autodiff of the reference loop
    unroll: int | bool  # of the loops that feed the backward pass
    primal_unroll: int | bool  # of a forward-only call
    primal_hoist: bool  # input projection up front in a forward-only call


#: the explicit strategies: ``impl -> (hoist, layout, autodiff)``
EXPLICIT = {
    "fused": (False, BATCH_MAJOR, False),
    "fused_fm": (False, FEATURE_MAJOR, False),
    "hoist": (True, BATCH_MAJOR, False),
    "fm_autodiff": (False, FEATURE_MAJOR, True),
}


def _backend() -> str:
    """The platform the computation runs on (a function, so tests can set it)."""
    return jax.default_backend()


def plan(
    impl: str,
    batch: int,
    hidden: int,
    tuning: Tuning,
    unroll: int | bool | None = None,
    masked_reverse: bool = False,
) -> Plan:
    """The :class:`Plan` of a fused run; ``unroll=None`` lets ``"auto"`` choose.

    On CPU, ``"auto"`` follows ``tuning`` (measured on one core, interleaved
    timings of every strategy at eight sizes, benchmarks/results/layouts.md):

    * forward-only: feature-major steps for small hidden sizes, where a
      batch-major ``[B, H]`` gate block is too narrow to vectorise (up to 2x at
      ``H = 16``), and for large states;
    * gradient: the hand-written backward, batch-major, from moderate sizes on;
      feature-major up to ``tuning.fm_hidden_grad``; autodiff of the reference
      loop in ``tuning.autodiff_hidden``, where XLA compiles it better than the
      kernel's backward;
    * the input projection computed for all steps up front pays off only for a
      batch of one (latency-bound); in a forward-only call only where
      ``tuning.batch1_primal_hoist``.

    On another backend the plan is the plain one (see the module docstring).
    The explicit ``impl`` values fix layout, hoisting and backward themselves.
    """
    fixed = 1 if unroll is None else unroll
    if impl in EXPLICIT:
        hoist, layout, autodiff = EXPLICIT[impl]
        return Plan(hoist, layout, layout, autodiff, fixed, fixed, hoist)
    if _backend() != "cpu":  # not measured there: the device-friendly defaults
        return Plan(False, BATCH_MAJOR, BATCH_MAJOR, impl == "autodiff", fixed,
                    fixed, False)  # fmt: skip
    layout = (
        FEATURE_MAJOR if hidden <= tuning.fm_hidden_grad and batch > 1 else BATCH_MAJOR
    )
    primal = (
        FEATURE_MAJOR
        if hidden <= tuning.fm_hidden_primal
        or batch * hidden >= tuning.fm_primal_min_cells
        else BATCH_MAJOR
    )
    low, high = tuning.autodiff_hidden
    autodiff = low <= hidden <= high and batch > 1
    if masked_reverse and not tuning.autodiff_masked_reverse:
        autodiff = False
    primal_unroll, grad_unroll = (fixed, fixed)
    if unroll is None and batch == 1:
        primal_unroll, grad_unroll = tuning.batch1_unroll
    # (measured with batch-major steps only; a small H at B=1 runs feature-major)
    primal_hoist = batch == 1 and tuning.batch1_primal_hoist and primal is BATCH_MAJOR
    if impl == "autodiff":  # "auto"'s forward-only loop; derivatives by autodiff
        autodiff = True
    return Plan(
        batch == 1, layout, primal, autodiff, grad_unroll, primal_unroll, primal_hoist
    )
