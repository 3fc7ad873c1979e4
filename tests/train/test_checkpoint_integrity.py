"""Damaged checkpoints are never restored: copies of a real checkpoint damaged in
every file (a flipped bit, overwritten bytes, truncation, deletion, an edited
record) either fall back to the older intact step, saying so, or restore
exactly the undamaged arrays (the damaged bytes were ones no reader uses). A
run resumed past a damaged checkpoint equals an uninterrupted run bit for bit,
and NonFiniteError names only a verified checkpoint."""

from __future__ import annotations

import gc
import json
import os
import shutil
import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxseq.train import (
    CheckpointCorruptError,
    Checkpointing,
    CheckpointWarning,
    Logging,
    NonFiniteError,
    checkpoint_manager,
    fit,
    init_state,
    restore_checkpoint,
)

KEY = jax.random.key(0)
OPT = optax.adam(1e-2)


def _params():
    # a 32 x 32 matrix: large enough that Orbax stores it out of line, in data
    # files without checksums of their own (small arrays sit in checksummed nodes)
    rng = np.random.default_rng(0)
    return {
        "w": jnp.asarray(rng.normal(size=(32, 32)) / 6, jnp.float32),
        "b": jnp.zeros(32, jnp.float32),
    }


def _data(seed, n=64):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 32)).astype(np.float32)
    return x, (x @ rng.normal(size=(32, 32)) / 6).astype(np.float32)


def _loss(params, batch, key):
    x, y = batch
    return jnp.mean((x @ params["w"] + params["b"] - y) ** 2), None


def _fit(ckpt, epochs, **kw):
    """4 steps per epoch, a checkpoint every 4 steps, two kept; with validation
    data, so checkpoints hold the best parameters too."""
    return fit(
        _loss,
        OPT,
        _params(),
        _data(0),
        key=KEY,
        batch_size=16,
        epochs=epochs,
        valid_data=_data(1, 16),
        checkpoint=None if ckpt is None else Checkpointing(ckpt, every=4),
        logging=Logging(progress=False),
        **kw,
    )


LIKE = init_state(_params(), OPT, KEY)


def _restore(directory):
    manager = checkpoint_manager(directory)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            restored = restore_checkpoint(manager, LIKE)
    finally:
        manager.close()
    messages = [str(w.message) for w in caught if w.category is CheckpointWarning]
    return restored, messages


def _arrays(result):
    """The arrays of a Restored (state, best params) or a FitResult (state,
    params)."""
    state = result.state._replace(key=jax.random.key_data(result.state.key))
    other = getattr(result, "best_params", getattr(result, "params", None))
    return [np.asarray(x) for x in jax.tree.leaves((state, other))]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A real checkpoint directory (steps 4 and 8) and what each step holds."""
    ckpt = tmp_path_factory.mktemp("pristine") / "ckpt"
    _fit(ckpt, epochs=2)
    assert sorted(int(p.name) for p in ckpt.iterdir() if p.name.isdigit()) == [4, 8]
    manager = checkpoint_manager(ckpt)
    steps = {s: _arrays(restore_checkpoint(manager, LIKE, step=s)) for s in (4, 8)}
    manager.close()
    return ckpt, steps


def _flip(path: Path, where: float) -> None:
    data = bytearray(path.read_bytes())
    data[int(where * (len(data) - 1))] ^= 0x04
    path.write_bytes(bytes(data))


def _overwrite(path: Path, where: float) -> None:
    data = bytearray(path.read_bytes())
    i = int(where * max(len(data) - 16, 0))
    data[i : i + 16] = b"\xab" * len(data[i : i + 16])
    path.write_bytes(bytes(data))


def _truncate(path: Path, where: float) -> None:
    os.truncate(path, path.stat().st_size // 2)


def _delete(path: Path, where: float) -> None:
    path.unlink()


DAMAGE = {
    "flip": (_flip, (0.2, 0.5, 0.8)),
    "overwrite": (_overwrite, (0.5,)),
    "truncate": (_truncate, (0.5,)),
    "delete": (_delete, (0.0,)),
}


def _check_outcome(restored, messages, steps, label):
    """Fell back to step 4 saying so, or restored step 8's exact arrays."""
    step = int(restored.state.step)
    got = _arrays(restored)
    if step == 4:
        assert len(messages) == 1, label
        assert "damaged checkpoint(s)" in messages[0] and "step 8: " in messages[0]
        assert "restored step 4, the newest intact one" in messages[0], label
        assert restored.skipped == (8,)
    else:
        assert step == 8 and not messages, (label, messages)
    for a, b in zip(got, steps[step], strict=True):
        np.testing.assert_array_equal(a, b, err_msg=label)
    return messages[0] if messages else None


# Orbax abandons the read coroutines of a damaged array; collected at the end of
# this test (gc.collect below), their "Exception ignored" reports are its to ignore.
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_every_damaged_array_file_is_detected_or_harmless(pristine, tmp_path):
    src, steps = pristine
    files = sorted(p.relative_to(src) for p in (src / "8").rglob("*") if p.is_file())
    array_files = [f for f in files if f.parent.name == "d"]
    assert len(array_files) >= 4
    outcomes: dict[str, list[str | None]] = {k: [] for k in DAMAGE}
    for kind, (damage, positions) in DAMAGE.items():
        for rel in array_files:
            for where in positions:
                copy = tmp_path / f"{kind}"
                shutil.rmtree(copy, ignore_errors=True)
                shutil.copytree(src, copy)
                damage(copy / rel, where)
                restored, messages = _restore(copy)
                label = f"{kind} {rel} at {where}"
                outcomes[kind].append(_check_outcome(restored, messages, steps, label))
    gc.collect()  # the abandoned reads (see the mark above)
    # the checksums are what catches flipped bits and overwritten bytes in the
    # out-of-line array data: Orbax reads those without an error
    for kind in ("flip", "overwrite"):
        caught = [m for m in outcomes[kind] if m and "match its checksum" in m]
        assert len(caught) >= 2, (kind, outcomes[kind])
    for kind in ("truncate", "delete"):
        assert any(outcomes[kind]), kind


def _edit_record(path: Path) -> None:
    record = json.loads(path.read_text())
    record["batch"] += 1  # still valid JSON: resuming would skip a batch
    path.write_text(json.dumps(record))


@pytest.mark.parametrize(
    "rel,damage,reason",
    [
        ("meta/metadata", _edit_record, "record (meta) does not match its checksum"),
        ("meta/metadata", lambda p: _overwrite(p, 0.5), "record (meta) does not read"),
        ("meta/metadata", Path.unlink, "record (meta) does not read"),
        ("state/_METADATA", lambda p: _overwrite(p, 0.5), "arrays do not read"),
        ("state/_METADATA", lambda p: _truncate(p, 0), "arrays do not read"),
        ("state/manifest.ocdbt", lambda p: _flip(p, 0.5), "arrays do not read"),
        ("best/_METADATA", lambda p: _overwrite(p, 0.5), "arrays do not read"),
    ],
    ids=[
        "record-edited",
        "record-garbled",
        "record-deleted",
        "metadata-garbled",
        "metadata-truncated",
        "manifest-flipped",
        "best-metadata-garbled",
    ],
)
def test_damaged_metadata_is_detected(pristine, tmp_path, rel, damage, reason):
    src, steps = pristine
    copy = tmp_path / "ckpt"
    shutil.copytree(src, copy)
    damage(copy / "8" / rel)
    restored, messages = _restore(copy)
    assert int(restored.state.step) == 4
    message = _check_outcome(restored, messages, steps, rel)
    assert f"step 8: its {reason}" in message


def test_no_intact_checkpoint_is_an_error_naming_the_directory(pristine, tmp_path):
    src, _ = pristine
    copy = tmp_path / "ckpt"
    shutil.copytree(src, copy)
    for step in ("4", "8"):
        _edit_record(copy / step / "meta" / "metadata")
    with pytest.raises(
        CheckpointCorruptError,
        match=rf"checkpoint_dir: no intact checkpoint in {copy} \(step 8: its record "
        r"\(meta\) does not match its checksum; step 4: .*\)\. Delete the directory "
        r"or pass another checkpoint_dir to start afresh\.",
    ) as err:
        _restore(copy)
    assert "\n" not in str(err.value)
    # fit refuses too, rather than training from scratch or from damaged state
    with pytest.raises(CheckpointCorruptError, match="no intact checkpoint"):
        _fit(copy, epochs=3)


def test_unverifiable_checkpoint_is_refused(pristine, tmp_path):
    """A checkpoint without checksums (an older jaxseq) is not restored."""
    src, _ = pristine
    copy = tmp_path / "ckpt"
    shutil.copytree(src, copy)
    for step in ("4", "8"):
        path = copy / step / "meta" / "metadata"
        record = json.loads(path.read_text())
        del record["_sha256"]
        path.write_text(json.dumps(record))
    with pytest.raises(CheckpointCorruptError, match="it has no checksums"):
        _restore(copy)


@pytest.mark.slow
def test_resume_past_a_damaged_checkpoint_equals_an_uninterrupted_run(tmp_path):
    reference = _fit(None, epochs=3)
    ckpt = tmp_path / "ckpt"
    _fit(ckpt, epochs=2)
    _flip(next((ckpt / "8" / "meta").glob("metadata")), 0.5)  # damaged: newest
    with pytest.warns(CheckpointWarning) as caught:
        resumed = _fit(ckpt, epochs=3)
    messages = [str(w.message) for w in caught]
    assert any("step 8: " in m and "restored step 4" in m for m in messages)
    assert any(
        f"moved the damaged checkpoint(s) aside to {ckpt}/8.damaged" in m
        for m in messages
    )
    assert resumed.resumed_from == 4 and int(resumed.state.step) == 12
    for a, b in zip(_arrays(reference), _arrays(resumed), strict=True):
        np.testing.assert_array_equal(a, b)
    assert [r["train_loss"] for r in resumed.history] == [
        r["train_loss"] for r in reference.history
    ]
    assert (ckpt / "8.damaged").is_dir()  # kept for inspection, no longer listed
    assert sorted(int(p.name) for p in ckpt.iterdir() if p.name.isdigit()) == [8, 12]


def test_non_finite_error_names_only_a_verified_checkpoint(tmp_path):
    """Step 6's checkpoint is damaged after it is committed; the NaN at step 7
    then names step 3, the newest checkpoint that reads back intact."""
    ckpt = tmp_path / "ckpt"
    calls = [0]

    def collate(batch):
        calls[0] += 1
        if calls[0] == 8:  # the batch of update 7: step 6 was saved before it
            record = ckpt / "6" / "meta" / "metadata"
            deadline = time.monotonic() + 60
            while not record.exists():  # the asynchronous write commits
                assert time.monotonic() < deadline
                time.sleep(0.01)
            _edit_record(record)
        return batch

    def loss_fn(params, batch, key):
        t = params["t"]
        return jnp.mean(batch[0]) * 0.0 - t + jnp.where(t >= 7, jnp.nan, 0.0), None

    with (
        pytest.warns(CheckpointWarning, match=r"step 6: its record \(meta\) does not"),
        pytest.raises(
            NonFiniteError, match=r"at step 7 .*the last good checkpoint is step 3"
        ) as err,
    ):
        fit(
            loss_fn,
            optax.sgd(1.0),
            {"t": jnp.zeros(())},
            (np.zeros(8, np.float32),),
            key=KEY,
            batch_size=2,
            epochs=5,
            collate=collate,
            checkpoint=Checkpointing(ckpt, every=3),
            logging=Logging(progress=False),
        )
    assert err.value.checkpoint_step == 3
