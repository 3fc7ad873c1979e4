"""The option groups of :func:`~jaxseq.train.fit`: small frozen objects, checked
when made.

- :class:`EarlyStopping`: the validation metric that picks the best epoch and may
  end the run early.
- :class:`Checkpointing`: where and how often the run is checkpointed, and
  whether it resumes.
- :class:`Logging`: metrics files, curves and the progress display.

Example::

    fit(loss_fn, opt, params, data, key=key, batch_size=32, epochs=10,
        valid_data=valid,
        early_stopping=EarlyStopping(monitor="accuracy", mode="max", patience=2),
        checkpoint=Checkpointing("run/ckpt", every=500),
        logging=Logging("run/logs", progress=False))

The flat keywords of earlier releases (``patience=``, ``checkpoint_dir=``,
``log_dir=``, ...) still work for one release with a ``DeprecationWarning``;
:func:`from_keywords` maps them to these objects.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from typing import Any, Literal


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_int_or_none(owner: str, name: str, value: Any, what: str) -> None:
    if value is not None and (not _is_int(value) or value < 1):
        raise ValueError(
            f"{owner}.{name}: expected a positive int ({what}) or None, got {value!r}."
        )


def _bool(owner: str, name: str, value: Any, allow_none: bool = False) -> None:
    if not (isinstance(value, bool) or (allow_none and value is None)):
        want = "True, False or None" if allow_none else "True or False"
        raise TypeError(f"{owner}.{name}: expected {want}, got {value!r}.")


def _path(owner: str, name: str, value: Any, allow_none: bool) -> None:
    if not (isinstance(value, (str, os.PathLike)) or (allow_none and value is None)):
        want = "a path (str or os.PathLike)" + (" or None" if allow_none else "")
        raise TypeError(f"{owner}.{name}: expected {want}, got {value!r}.")


@dataclasses.dataclass(frozen=True)
class EarlyStopping:
    """The validation metric that selects the best epoch and may stop the run.

    Used only with ``valid_data``.

    Attributes:
        monitor: ``"loss"`` or an ``aux`` metric name such as ``"accuracy"``.
        mode: ``"min"`` or ``"max"``: which way ``monitor`` improves.
        patience: stop after this many epochs without improvement (``None``:
            never stop early).
        min_delta: the least change that counts as an improvement (``>= 0``).
        restore_best: :func:`fit` returns the best epoch's parameters in
            ``FitResult.params`` (else the last ones).
    """

    monitor: str = "loss"
    mode: Literal["min", "max"] = "min"
    patience: int | None = None
    min_delta: float = 0.0
    restore_best: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.monitor, str) or not self.monitor:
            raise ValueError(
                f"EarlyStopping.monitor: expected a metric name such as 'loss', "
                f"got {self.monitor!r}."
            )
        if self.mode not in ("min", "max"):
            raise ValueError(
                f"EarlyStopping.mode: expected 'min' or 'max', got {self.mode!r}."
            )
        _positive_int_or_none("EarlyStopping", "patience", self.patience, "epochs")
        delta = self.min_delta
        if (
            isinstance(delta, bool)
            or not isinstance(delta, (int, float))
            or not math.isfinite(delta)
            or delta < 0
        ):
            raise ValueError(
                f"EarlyStopping.min_delta: expected a finite number >= 0, got "
                f"{delta!r}."
            )
        _bool("EarlyStopping", "restore_best", self.restore_best)


@dataclasses.dataclass(frozen=True)
class Checkpointing:
    """Orbax checkpoints of the run, verified when read back.

    Attributes:
        directory: where the checkpoints go; it must be writable (checked
            first). Each checkpoint records the checksums of its arrays and the
            run's fingerprint (options, initial parameters, key, data, the
            optimiser's updates of a probe gradient).
        every: also checkpoint every this many steps (the run always checkpoints
            at its end); ``None``: only at the end.
        max_to_keep: checkpoints kept on disk (``None``: all).
        resume: continue from the newest verified checkpoint in ``directory``
            when there is one (a damaged newer one is moved aside with a
            :class:`~jaxseq.train.CheckpointWarning`); the fingerprint must
            match. ``False``: the directory must hold none.
    """

    directory: str | os.PathLike
    every: int | None = None
    max_to_keep: int | None = 2
    resume: bool = True

    def __post_init__(self) -> None:
        _path("Checkpointing", "directory", self.directory, allow_none=False)
        _positive_int_or_none("Checkpointing", "every", self.every, "steps")
        _positive_int_or_none(
            "Checkpointing", "max_to_keep", self.max_to_keep, "checkpoints"
        )
        _bool("Checkpointing", "resume", self.resume)


@dataclasses.dataclass(frozen=True)
class Logging:
    """What a run writes and shows besides its result.

    Attributes:
        directory: write ``metrics.jsonl`` and ``metrics.csv`` there after every
            epoch, and ``curves.png`` at most every 30 s and after the last
            epoch (``None``: no files).
        title: the title of ``curves.png`` (what was trained on what).
        progress: ``True``: a tqdm bar ("compiling", then the steps with the
            running loss and an ETA) and status lines (resuming, one per epoch);
            ``None`` (default): the bar where a person watches
            (:func:`jaxseq.cli.watched`), else the same as plain lines on stderr;
            ``False``: nothing.
    """

    directory: str | os.PathLike | None = None
    title: str | None = None
    progress: bool | None = None

    def __post_init__(self) -> None:
        _path("Logging", "directory", self.directory, allow_none=True)
        if self.title is not None and not isinstance(self.title, str):
            raise TypeError(
                f"Logging.title: expected a str or None, got {self.title!r}."
            )
        _bool("Logging", "progress", self.progress, allow_none=True)


#: the flat keywords of earlier releases: name -> (group, field)
KEYWORDS: Mapping[str, tuple[str, str]] = {
    "monitor": ("early_stopping", "monitor"),
    "mode": ("early_stopping", "mode"),
    "patience": ("early_stopping", "patience"),
    "min_delta": ("early_stopping", "min_delta"),
    "restore_best": ("early_stopping", "restore_best"),
    "checkpoint_dir": ("checkpoint", "directory"),
    "checkpoint_every": ("checkpoint", "every"),
    "max_to_keep": ("checkpoint", "max_to_keep"),
    "resume": ("checkpoint", "resume"),
    "log_dir": ("logging", "directory"),
    "title": ("logging", "title"),
    "progress": ("logging", "progress"),
}
_GROUPS = {
    "early_stopping": EarlyStopping,
    "checkpoint": Checkpointing,
    "logging": Logging,
}


def from_keywords(options: Mapping[str, Any]) -> dict[str, Any]:
    """The option objects for flat keywords of earlier releases.

    ``{"patience": 2, "checkpoint_dir": d, "log_dir": l}`` gives
    ``{"early_stopping": EarlyStopping(patience=2), "checkpoint":
    Checkpointing(d), "logging": Logging(l)}``: the keyword arguments of
    :func:`~jaxseq.train.fit` that replace them (a group appears only when one of
    its keywords is given; checkpoint keywords without ``checkpoint_dir`` give no
    checkpointing, as before).

    Raises:
        TypeError: for a keyword that is not one of :data:`KEYWORDS`.
        ValueError, TypeError: for invalid values, naming the field.
    """
    unknown = sorted(set(options) - set(KEYWORDS))
    if unknown:
        raise TypeError(
            f"fit() got unexpected keyword arguments {unknown}; the option keywords "
            f"are {sorted(KEYWORDS)} (deprecated) or early_stopping=, checkpoint=, "
            "logging=."
        )
    fields: dict[str, dict[str, Any]] = {}
    for name, value in options.items():
        group, field = KEYWORDS[name]
        fields.setdefault(group, {})[field] = value
    out = {}
    for group, values in fields.items():
        if group == "checkpoint" and values.get("directory") is None:
            continue  # no directory: no checkpoints, the other keywords unused
        out[group] = _GROUPS[group](**values)
    return out
