"""The settings of :func:`~jaxseq.forecast.recurrent` and their validation."""

from __future__ import annotations

from typing import Any, NamedTuple

from .. import cells
from .classical import CLASSICAL
from .heads import gaussian, quantile, student_t
from .models import STRATEGIES
from .transforms import TRANSFORMS

__all__ = [
    "CALIBRATIONS",
    "CELLS",
    "COMBINATIONS",
    "HEADS",
    "RecurrentConfig",
    "Setup",
    "check_config",
    "linear_orders",
]

CELLS = cells.BY_NAME  # the built-in cells by name
HEADS = {"gaussian": gaussian, "quantile": quantile, "student_t": student_t}


class RecurrentConfig(NamedTuple):
    """Settings of :func:`recurrent` (validated when the method is built).

    ``period`` adds ``sin/cos`` calendar covariates of that period (``None``:
    none); ``steps`` is the approximate number of Adam updates (whole epochs);
    ``ensemble`` trains that many networks from different seeds (as one
    vmapped program, :func:`~.models.stacked`: the same batches, each its own
    initial parameters and dropout) and takes the median of their forecasts
    and interval half-widths. ``series_input``: each window also reads the
    one-hot of its series (:func:`~.windows.series_onehot`), so that a global
    model can tell its series apart.

    ``transform`` (:mod:`.transforms`): the nets model the values
    (``"level"``, windows relative to their last value when ``relative``), their
    first differences (``"diff"``), or (``"auto"``, the default) one net of each
    is trained and each series' forecast combines them (:mod:`.ensemble`:
    the weighted mean of points and interval half-widths), weighted by
    ``combine``: ``"pool"`` (default) averages the transforms whose mean
    absolute error on the series' held-out windows (below) is within
    ``1 + pool`` times the smallest (forecast pooling: a choice where one is
    clearly better, an average where the held-out values cannot tell them
    apart), ``"choose"`` takes the smallest, ``"mean"`` averages all (the
    only one that needs no ``holdout``). An ``ensemble`` of seeds per
    transform is combined by the median.

    ``classical``: names of :mod:`.classical` models (``"ar-level"``,
    ``"ar-diff"``: direct linear autoregressions fitted per series by least
    squares, order by AIC up to ``window``) that join the candidates beside
    the nets, weighed per series on the same held-out windows by ``combine``:
    where no net beats a linear model there, the series' forecast falls back
    to it (or averages with it). ``()`` (default): nets only. Needs series
    without missing values (else they are left out). With ``fallback``
    (default), a series whose best classical model's held-out error is
    within ``1 + pool`` times its best net's takes the classical models
    alone (:func:`~.candidates.fallback`): a net must beat the simple model
    by more than a tie to be used.

    ``linear``: the last ``p`` inputs read by a linear autoregressive highway
    beside the net (:func:`~.models.forecaster`; direct strategy only); a
    tuple of orders, e.g. ``(0, window)``, makes each a candidate beside each
    transform (one global net per pair), weighed per series like the
    transforms by ``combine``.

    Calibration (:mod:`.conformal`): the last ``holdout`` values of each
    training part (``None``: ``max(2 * horizon, T // 4)`` with ``T`` the
    shortest training part, capped to leave ``window + horizon`` values before
    them; ``0``: no calibration) are held out: forecasts from every origin in
    them (rolling origins, ``holdout - horizon + 1`` per series) by nets
    trained on the rest, with early stopping on the held-out loss
    (``patience`` Adam steps without improvement), give the conformal factors
    (per horizon step with ``per_step``; with ``pool_steps`` the steps'
    scores are normalised by each step's median score and pooled into one
    quantile, ``c_h = s_h q``, and ACI into one level per series, instead of
    one quantile and level per step from that step's scores alone) that
    stretch the interval bounds;
    then (``refit``) the nets are retrained on the whole training part for
    ``steps`` (with ``patience``: as many steps as the best held-out epoch
    took), and the held-out errors are scored against the refitted nets'
    interval widths on the same held-out windows (the held-out points with
    the refitted widths, :func:`~.conformal.recentre`): the factors then
    stretch the widths they were measured on. (A refitted net has learned its
    spread on the held-out values too; the held-out nets' widths would
    understate or overstate its own.) The factors pool every series' held-out
    values, or (``per_series``) each series has its own.

    ``calibration``: how the factors follow the forecasts (:mod:`.conformal`).
    ``"split"``: the held-out factors, fixed. ``"rolling"``: a forecast from
    origin ``o`` of series ``i`` (its history ``y[:o]``, ``o`` at or after its
    training part's end ``L``) also scores the forecasts that the fitted nets
    give from every origin ``t`` in ``[L, o)`` (from ``y[:t]``), wherever the
    value at step ``h`` is observed (``t + h <= o``), and takes the conformal
    quantile of those and the held-out scores (the group's, aligned on the
    training parts' ends, or the series' own with ``per_series``) per step.
    ``"aci"`` (default): rolling, plus adaptive conformal inference per series
    with step ``gamma`` (its level ``alpha = 1 - p`` moved by each realised
    miss or hit of the interval it issued). Nothing at or after ``o`` is read;
    no net is refitted. A request from inside the training part takes the
    split factors.
    """

    cell: str = "lstm"
    hidden: int = 32
    num_layers: int = 1
    dropout: float = 0.0
    strategy: str = "direct"
    head: str = "gaussian"
    window: int = 24
    relative: bool = True
    period: float | None = None
    steps: int = 1500
    batch_size: int = 64
    learning_rate: float = 3e-3
    ensemble: int = 1
    seed: int = 0
    holdout: int | None = None
    patience: int | None = None
    refit: bool = True
    per_series: bool = False
    transform: str = "auto"
    per_step: bool = True
    pool_steps: bool = False
    combine: str = "pool"
    pool: float = 0.1
    linear: int | tuple[int, ...] = 0
    series_input: bool = False
    classical: tuple[str, ...] = ()
    fallback: bool = True
    calibration: str = "aci"
    gamma: float = 0.05


#: how ``recurrent`` weighs its transforms' nets per series (:func:`_weights`)
COMBINATIONS = ("pool", "mean", "choose")
#: how ``recurrent`` calibrates its intervals (``RecurrentConfig.calibration``)
CALIBRATIONS = ("split", "rolling", "aci")


def check_config(config: RecurrentConfig) -> None:
    """Refuse a bad ``config``, naming the field, expected and received."""
    if config.cell not in CELLS:
        raise ValueError(f"cell: expected one of {sorted(CELLS)}, got {config.cell!r}.")
    if config.head not in HEADS:
        raise ValueError(f"head: expected one of {sorted(HEADS)}, got {config.head!r}.")
    if config.strategy not in STRATEGIES:
        raise ValueError(
            f"strategy: expected one of {STRATEGIES}, got {config.strategy!r}."
        )
    for name in ("hidden", "steps", "batch_size", "ensemble", "window"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected a positive int, got {value!r}.")
    if config.patience is not None and (
        isinstance(config.patience, bool)
        or not isinstance(config.patience, int)
        or config.patience < 1
    ):
        raise ValueError(
            f"patience: expected None or a positive int, got {config.patience!r}."
        )
    h = config.holdout
    if h is not None and (isinstance(h, bool) or not isinstance(h, int) or h < 0):
        raise ValueError(f"holdout: expected None or an int >= 0, got {h!r}.")
    if config.transform not in TRANSFORMS:
        raise ValueError(
            f"transform: expected one of {sorted(TRANSFORMS)}, got "
            f"{config.transform!r}."
        )
    if config.combine not in COMBINATIONS:
        raise ValueError(
            f"combine: expected one of {list(COMBINATIONS)}, got {config.combine!r}."
        )
    if config.calibration not in CALIBRATIONS:
        raise ValueError(
            f"calibration: expected one of {list(CALIBRATIONS)}, got "
            f"{config.calibration!r}."
        )
    g = config.gamma
    if isinstance(g, bool) or not isinstance(g, int | float) or not 0 <= g < 1:
        raise ValueError(f"gamma: expected a number in [0, 1), got {g!r}.")
    if not (isinstance(config.pool, int | float) and config.pool >= 0):
        raise ValueError(f"pool: expected a number >= 0, got {config.pool!r}.")
    for name in (
        "relative",
        "refit",
        "per_series",
        "per_step",
        "pool_steps",
        "series_input",
        "fallback",
    ):
        if not isinstance(getattr(config, name), bool):
            raise TypeError(
                f"{name}: expected True or False, got {getattr(config, name)!r}."
            )
    linears = linear_orders(config)
    if any(linears) and config.strategy != "direct":
        raise ValueError(
            f"linear: the autoregressive highway serves the direct strategy; "
            f"expected linear=0 with strategy={config.strategy!r}, got "
            f"{config.linear!r}."
        )
    classical = config.classical
    if (
        not isinstance(classical, tuple | list)
        or any(c not in CLASSICAL for c in classical)
        or len(set(classical)) != len(classical)
    ):
        raise ValueError(
            f"classical: expected a tuple of distinct names from "
            f"{sorted(CLASSICAL)}, got {classical!r}."
        )
    several = config.transform == "auto" or len(linears) > 1 or bool(classical)
    if several and config.combine != "mean" and h == 0:
        raise ValueError(
            f"holdout: several candidates (transform={config.transform!r}, "
            f"linear={config.linear!r}"
            + (f", classical={config.classical!r}" if classical else "")
            + f") with combine={config.combine!r} are "
            "weighed on held-out values; expected holdout > 0 or None, got 0 "
            "(or combine='mean', or one transform and one linear order)."
        )


def linear_orders(config: RecurrentConfig) -> tuple[int, ...]:
    """The candidate highway orders of ``config.linear`` (an int or a tuple of
    distinct ints, each in ``[0, window]``)."""
    linear = config.linear
    orders = tuple(linear) if isinstance(linear, tuple | list) else (linear,)
    if (
        not orders
        or len(set(orders)) != len(orders)
        or any(
            isinstance(p, bool) or not isinstance(p, int) or not 0 <= p <= config.window
            for p in orders
        )
    ):
        raise ValueError(
            f"linear: expected an int in [0, window] = [0, {config.window}] or a "
            f"tuple of distinct such ints, got {linear!r}."
        )
    return orders


class Setup(NamedTuple):
    """What every step of :func:`recurrent`'s fit and forecast reads: the
    validated ``config``, the ``horizon``, the calendar covariates
    (``None``: none), the candidate highway orders and the ``fit_options``
    passed on to :func:`~.predict.train`."""

    config: RecurrentConfig
    horizon: int
    calendar: Any
    linears: tuple[int, ...]
    fit_options: dict[str, Any]
