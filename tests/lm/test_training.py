"""The checkpoints' ``extra`` arrays (where :func:`jaxseq.lm.fit_stream` keeps the
streams' carry): saved with the state, verified against their sha256 and
restored; another structure is refused; damage is detected or harmless."""

from __future__ import annotations

import gc
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxseq.train import init_state
from jaxseq.train.checkpoint import (
    CheckpointCorruptError,
    CheckpointMismatchError,
    checkpoint_manager,
    finish,
    restore_checkpoint,
    save_checkpoint,
)


def _saved(directory: Path):
    state = init_state(
        {"w": jnp.arange(1.0, 7.0).reshape(2, 3)}, optax.sgd(0.1), jax.random.key(0)
    )
    extra = (jnp.linspace(-1.0, 1.0, 4096).reshape(8, 512), jnp.arange(8) + 3)
    manager = checkpoint_manager(directory, async_save=False)
    save_checkpoint(manager, state, {"position": {"epoch": 0, "chunk": 5}}, extra=extra)
    return manager, state, extra


def test_extra_arrays_round_trip_and_other_structures_are_refused(tmp_path):
    manager, state, extra = _saved(tmp_path / "ckpt")
    try:
        restored = restore_checkpoint(manager, state, extra_like=extra)
        for a, b in zip(restored.extra, extra, strict=True):
            assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
        assert restored.meta["position"] == {"epoch": 0, "chunk": 5}
        assert restore_checkpoint(manager, state).extra is None  # not asked for
        with pytest.raises(CheckpointMismatchError, match=r"extra\[0\]: float32"):
            restore_checkpoint(manager, state, extra_like=(jnp.zeros((8, 5)), extra[1]))
    finally:
        finish(manager)
    plain = checkpoint_manager(tmp_path / "plain", async_save=False)
    try:
        save_checkpoint(plain, state, {})
        with pytest.raises(CheckpointMismatchError, match="without them"):
            restore_checkpoint(plain, state, extra_like=extra)
    finally:
        finish(plain)


# Orbax abandons the read coroutines of a damaged array; they are collected (and
# their "Exception ignored" reported) whenever the GC runs, possibly in another
# test. Collected here, at the end of this test, they are this test's to ignore.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_damaged_extra_arrays_are_detected_or_harmless(tmp_path):
    manager, state, extra = _saved(tmp_path / "pristine")
    finish(manager)
    files = [
        p for p in (tmp_path / "pristine" / "0" / "extra").rglob("*") if p.is_file()
    ]
    assert files
    detected = []
    for i, path in enumerate(files):
        copy = tmp_path / f"copy{i}"
        shutil.copytree(tmp_path / "pristine", copy)
        target = copy / path.relative_to(tmp_path / "pristine")
        data = bytearray(target.read_bytes())
        if not data:
            continue
        at = len(data) // 2
        data[at : at + 8] = bytes((b ^ 0xFF) for b in data[at : at + 8])
        target.write_bytes(bytes(data))
        m = checkpoint_manager(copy, async_save=False)
        try:
            restored = restore_checkpoint(m, state, extra_like=extra)
        except CheckpointCorruptError as err:
            detected.append(str(err))
            continue
        finally:
            finish(m)
        for a, b in zip(restored.extra, extra, strict=True):  # harmless
            assert np.asarray(a).tobytes() == np.asarray(b).tobytes(), target
    gc.collect()  # the abandoned reads (see the mark above)
    # the bytes of the arrays: Orbax reads them back, the checksum catches it
    assert any("array extra[0] does not match its checksum" in m for m in detected)
