"""The checkpoints of one :func:`~jaxseq.train.fit` call: its fingerprint, a
verified resume (or a clear refusal), saves, and closing that never hangs."""

from __future__ import annotations

import os
import warnings
from typing import Any

from . import _fingerprint
from .checkpoint import (
    CheckpointCorruptError,
    CheckpointMismatchError,
    CheckpointWarning,
    CheckpointWriteError,
    Restored,
    checkpoint_manager,
    finish,
    restore_checkpoint,
    save_checkpoint,
    set_aside,
)
from .step import TrainState


class RunCheckpoints:
    """``checkpoint_dir`` of a run (checked writable when created)."""

    def __init__(self, directory: str | os.PathLike, *, max_to_keep, optimizer):
        self.manager = checkpoint_manager(directory, max_to_keep=max_to_keep)
        self.directory = str(self.manager.directory)
        self.optimizer = optimizer
        self.fingerprint: dict[str, Any] = {}
        self.last_saved: int | None = None

    def _mismatch(self, diffs: list[str]) -> CheckpointMismatchError:
        d = self.directory
        return CheckpointMismatchError(
            f"checkpoint_dir: {d} holds a checkpoint of another run "
            f"({'; '.join(diffs)}). To start afresh, pass another checkpoint_dir "
            f"or delete {d}."
        )

    def _check(self, meta: dict[str, Any]) -> None:
        diffs = _fingerprint.differences(meta.get("fingerprint"), self.fingerprint)
        if diffs:
            raise self._mismatch(diffs)

    def restore(
        self, like: TrainState, *, resume: bool, extra_like: Any = None
    ) -> Restored | None:
        """The newest intact checkpoint of this run (``None``: there is none);
        damaged newer ones are moved aside, with a warning. ``extra_like``: the
        structure of the ``extra`` arrays saved with the state (see
        :func:`~jaxseq.train.checkpoint.save_checkpoint`)."""
        steps = self.manager.all_steps()
        if not steps:
            return None
        if not resume:
            raise CheckpointMismatchError(
                "checkpoint_dir: expected a directory without checkpoints with "
                f"resume=False, got {self.directory} with steps {list(steps)}. "
                f"Pass another checkpoint_dir or delete {self.directory}."
            )
        restored = restore_checkpoint(
            self.manager, like, check=self._check, extra_like=extra_like
        )
        step = int(restored.state.step)
        if restored.skipped:  # so that the run can write those steps again
            moved = set_aside(self.manager, restored.skipped)
            warnings.warn(
                f"checkpoint_dir: moved the damaged checkpoint(s) aside to "
                f"{', '.join(moved)}; the run continues from step {step}.",
                CheckpointWarning,
                stacklevel=4,
            )
        probe = _fingerprint.resume_probe(self.optimizer, restored.state)
        if not _fingerprint.close(restored.meta.get("probe"), probe):
            raise self._mismatch(
                [
                    f"optimizer: another update of a probe gradient at step {step} "
                    "(another learning rate schedule or hyperparameter)"
                ]
            )
        self.last_saved = step
        return restored

    def save(
        self, state: TrainState, meta: dict[str, Any], best_params, extra: Any = None
    ) -> None:
        step = int(state.step)
        if self.last_saved == step:
            return
        meta = {
            **meta,
            "fingerprint": self.fingerprint,
            "probe": _fingerprint.resume_probe(self.optimizer, state),
        }
        save_checkpoint(self.manager, state, meta, best_params=best_params, extra=extra)
        self.last_saved = step

    def close(self) -> None:
        """Wait for pending writes (raising a failed one) and release Orbax."""
        if self.manager is not None:
            manager, self.manager = self.manager, None
            finish(manager)

    def abandon(self) -> None:
        """Close after an error: the error in flight is the one to see."""
        try:
            self.close()
        except Exception:
            pass

    def verified_step(self, like: TrainState) -> int | None:
        """Wait for pending writes, then the step of the newest checkpoint that
        reads back intact (``None`` if none); closes the manager."""
        if self.manager is None:
            return None
        manager, self.manager = self.manager, None
        try:
            try:
                finish(manager, close=False)
            except CheckpointWriteError:  # it committed nothing: read what is there
                manager.reload()
            if not manager.all_steps():
                return None
            return int(restore_checkpoint(manager, like).state.step)
        except CheckpointCorruptError:
            return None
        finally:
            try:
                manager.close()
            except Exception:
                pass
