"""The fit loop: early stopping restores the best epoch, a NaN at a known step
stops the run naming it with the last checkpoint intact, resume continues
exactly, metrics files and curves are written, and a toy sequence task learns
under SGD with Robbins–Monro steps and under Adam."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxseq.train import (
    Checkpointing,
    EarlyStopping,
    Logging,
    NonFiniteError,
    checkpoint_manager,
    fit,
    init_state,
    latest_step,
    optimizer,
    restore_checkpoint,
    robbins_monro,
)

from . import _task

KEY = jax.random.key(0)


def _walk_loss(params, batch, key):
    """Training batches (flag 0) push w up by exactly 1 per SGD(1.0) step;
    validation batches (flag 1) score (w - 3)^2, so epoch 3 is the best."""
    flag = batch[0]
    w = params["w"]
    return jnp.mean(jnp.where(flag > 0, (w - 3.0) ** 2, -w)), None


def test_early_stopping_restores_best_epoch(tmp_path):
    train = (np.zeros(4, np.float32),)
    valid = (np.ones(2, np.float32),)
    result = fit(
        _walk_loss,
        optax.sgd(1.0),
        {"w": jnp.zeros(())},
        train,
        key=KEY,
        batch_size=4,
        epochs=20,
        valid_data=valid,
        early_stopping=EarlyStopping(patience=2),
        logging=Logging(tmp_path, progress=False),
    )
    assert result.stopped_early
    assert result.best_epoch == 3
    assert float(result.params["w"]) == 3.0  # the best epoch's parameters
    assert float(result.state.params["w"]) == 5.0  # where training stopped
    assert [r["valid_loss"] for r in result.history] == [4.0, 1.0, 0.0, 1.0, 4.0]
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2, 3, 4, 5]
    header = (tmp_path / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"epoch", "step", "train_loss", "valid_loss", "seconds"} <= set(header)
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_monitor_must_be_a_validation_metric():
    with pytest.raises(
        ValueError,
        match=r"monitor: expected one of the validation metrics \['loss'\], got "
        r"'accuracy'",
    ):
        fit(
            _walk_loss,
            optax.sgd(1.0),
            {"w": jnp.zeros(())},
            (np.zeros(4, np.float32),),
            key=KEY,
            batch_size=4,
            epochs=2,
            valid_data=(np.ones(2, np.float32),),
            early_stopping=EarlyStopping(monitor="accuracy"),
            logging=Logging(progress=False),
        )


def _counter_loss(nan_at):
    """SGD(1.0) on -t makes t count the updates; the loss is NaN at update nan_at."""

    def loss_fn(params, batch, key):
        t = params["t"]
        bad = jnp.where(t >= nan_at, jnp.nan, 0.0) if nan_at is not None else 0.0
        return jnp.mean(batch[0]) * 0.0 - t + bad, None

    return loss_fn


def test_nan_at_known_step_stops_and_keeps_last_checkpoint(tmp_path):
    ckpt = tmp_path / "ckpt"
    data = (np.zeros(8, np.float32),)  # 4 steps per epoch
    kwargs = dict(
        key=KEY,
        batch_size=2,
        epochs=5,
        checkpoint=Checkpointing(ckpt, every=3),
        logging=Logging(progress=False),
    )
    with pytest.raises(
        NonFiniteError,
        match=r"non-finite loss or gradient at step 7 \(epoch 2, batch 4 of 4\).*"
        r"last good checkpoint is step 6",
    ) as err:
        fit(_counter_loss(7), optax.sgd(1.0), {"t": jnp.zeros(())}, data, **kwargs)
    assert err.value.step == 7 and err.value.checkpoint_step == 6
    assert latest_step(ckpt) == 6
    like = init_state({"t": jnp.zeros(())}, optax.sgd(1.0), KEY)
    manager = checkpoint_manager(ckpt)
    restored = restore_checkpoint(manager, like)
    manager.close()
    assert float(restored.state.params["t"]) == 6.0 and int(restored.state.step) == 6
    assert restored.meta["epoch"] == 1 and restored.meta["batch"] == 2
    # the run is resumable from it once the cause is fixed
    result = fit(
        _counter_loss(None), optax.sgd(1.0), {"t": jnp.zeros(())}, data, **kwargs
    )
    assert int(result.state.step) == 20 and float(result.params["t"]) == 20.0
    assert latest_step(ckpt) == 20


def test_resume_continues_exactly_and_checks_the_run(tmp_path):
    train = _task.make_data(0, 96)
    params = _task.init_params(jax.random.key(1))
    opt = optimizer("adam", 1e-2, clip_norm=1.0)
    common = dict(key=KEY, batch_size=16, seed=3, logging=Logging(progress=False))
    ckpt = Checkpointing(tmp_path, every=4)
    full = fit(_task.loss_fn, opt, params, train, epochs=3, **common)
    part = fit(_task.loss_fn, opt, params, train, epochs=1, checkpoint=ckpt, **common)
    assert int(part.state.step) == 6
    rest = fit(_task.loss_fn, opt, params, train, epochs=3, checkpoint=ckpt, **common)
    assert int(rest.state.step) == 18
    for a, b in zip(
        jax.tree.leaves(full.params), jax.tree.leaves(rest.params), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    assert [r["train_loss"] for r in rest.history] == [
        r["train_loss"] for r in full.history
    ]
    with pytest.raises(
        ValueError,
        match=r"checkpoint_dir: .* holds a checkpoint of another run \(batch_size: 16 "
        r"in the checkpoint, 8 now\)\. To start afresh, pass another checkpoint_dir "
        r"or delete",
    ):
        fit(
            _task.loss_fn,
            opt,
            params,
            train,
            epochs=4,
            checkpoint=ckpt,
            **{**common, "batch_size": 8},
        )


def test_interrupted_write_leaves_last_checkpoint(tmp_path):
    """A temporary directory left by a write that never finished is ignored."""
    data = (np.zeros(8, np.float32),)
    fit(
        _counter_loss(None),
        optax.sgd(1.0),
        {"t": jnp.zeros(())},
        data,
        key=KEY,
        batch_size=2,
        epochs=1,
        checkpoint=Checkpointing(tmp_path),
        logging=Logging(progress=False),
    )
    assert latest_step(tmp_path) == 4
    broken = tmp_path / "8.orbax-checkpoint-tmp-1234"
    broken.mkdir()
    (broken / "state").mkdir()
    (broken / "state" / "partial").write_bytes(b"\x00" * 10)
    assert latest_step(tmp_path) == 4
    result = fit(
        _counter_loss(None),
        optax.sgd(1.0),
        {"t": jnp.zeros(())},
        data,
        key=KEY,
        batch_size=2,
        epochs=2,
        checkpoint=Checkpointing(tmp_path),
        logging=Logging(progress=False),
    )
    assert float(result.params["t"]) == 8.0


@pytest.mark.parametrize(
    "opt",
    [optax.sgd(robbins_monro(a=5.0, b=10.0, power=0.6)), optax.adam(2e-2)],
    ids=["sgd-robbins-monro", "adam"],
)
def test_toy_sequence_task_learns(opt):
    train = _task.make_data(0, 1024)
    valid = _task.make_data(1, 256)
    params = _task.init_params(jax.random.key(2), cell="lstm")
    before = _task.loss_fn(params, valid, None)[1]["accuracy"]
    result = fit(
        _task.loss_fn,
        opt,
        params,
        train,
        key=KEY,
        batch_size=32,
        epochs=6,
        valid_data=valid,
        eval_batch_size=256,
        early_stopping=EarlyStopping(monitor="accuracy", mode="max"),
        logging=Logging(progress=False),
    )
    acc = result.history[result.best_epoch - 1]["valid_accuracy"]
    assert acc > 0.9 > 0.75 > float(before)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"batch_size": 0}, r"batch_size: expected a positive int, got 0\."),
        (
            {"batch_size": 9},
            r"batch_size: expected at most the number of training examples \(8\), got 9\.",
        ),
        ({"epochs": 0}, r"epochs: expected a positive int, got 0\."),
    ],
)
def test_fit_argument_errors(kwargs, message):
    args = dict(key=KEY, batch_size=2, epochs=1, logging=Logging(progress=False))
    args |= kwargs
    with pytest.raises(ValueError, match=message):
        fit(
            _counter_loss(None),
            optax.sgd(1.0),
            {"t": jnp.zeros(())},
            (np.zeros(8, np.float32),),
            **args,
        )
    with pytest.raises(
        ValueError, match=r"train_data: expected arrays sharing a leading example axis"
    ):
        fit(
            _counter_loss(None),
            optax.sgd(1.0),
            {"t": jnp.zeros(())},
            (np.zeros(8), np.zeros(7)),
            key=KEY,
            batch_size=2,
            epochs=1,
        )
