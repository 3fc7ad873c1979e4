"""A checkpoint directory resumes only the run that wrote it: a rerun with another
learning rate, optimiser, hyperparameter, schedule, shapes, data, key or batch
size is refused with one line naming checkpoint_dir, what differs and how to
start afresh; the same run resumes and says from which step. fit also refuses
an optimiser that would not descend (negative, zero or NaN learning rate)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxseq.train import (
    Checkpointing,
    CheckpointMismatchError,
    Logging,
    fit,
    optimizer,
)

KEY = jax.random.key(0)


def _params(n=3, seed=0):
    rng = np.random.default_rng(seed)
    return {"w": jnp.asarray(rng.normal(size=n), jnp.float32), "b": jnp.zeros(())}


def _data(n=32, d=3, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x, (x @ np.arange(1.0, d + 1) + 0.5).astype(np.float32)


def _loss(params, batch, key):
    x, y = batch
    return jnp.mean((x @ params["w"] + params["b"] - y) ** 2), None


def _fit(ckpt, opt=None, params=None, data=None, resume=True, progress=False, **kw):
    args = dict(key=KEY, batch_size=8, epochs=1) | kw
    return fit(
        _loss,
        optax.sgd(0.05) if opt is None else opt,
        _params() if params is None else params,
        _data() if data is None else data,
        checkpoint=None if ckpt is None else Checkpointing(ckpt, resume=resume),
        logging=Logging(progress=progress),
        **args,
    )


def _refused(ckpt, match, **kw):
    with pytest.raises(CheckpointMismatchError) as err:
        _fit(ckpt, epochs=2, **kw)
    message = str(err.value)
    assert message.startswith(f"checkpoint_dir: {ckpt} holds a checkpoint of another")
    assert message.endswith(
        f"To start afresh, pass another checkpoint_dir or delete {ckpt}."
    )
    assert "\n" not in message
    assert any(part for part in [match] if part in message), message
    return message


@pytest.fixture
def ckpt(tmp_path):
    _fit(tmp_path / "ckpt")
    return tmp_path / "ckpt"


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"opt": optax.sgd(0.1)}, "optimizer: other updates of probe gradients"),
        ({"opt": optax.sgd(0.05, momentum=0.9)}, "optimizer: another optimiser (state"),
        ({"opt": optax.adam(0.05)}, "optimizer: another optimiser (state"),
        ({"batch_size": 4}, "batch_size: 8 in the checkpoint, 4 now"),
        ({"seed": 1}, "seed: 0 in the checkpoint, 1 now"),
        ({"key": jax.random.key(1)}, "key: another PRNG key"),
        (
            {"params": _params(4)},
            "params['w']: float32 (3,) in the checkpoint, float32 (4,) now",
        ),
        ({"params": _params(seed=1)}, "params['w']: other values"),
        ({"data": _data(n=40)}, "num_examples: 32 in the checkpoint, 40 now"),
        ({"data": _data(seed=2)}, "train_data[0]: other values"),
        ({"valid_data": _data(8)}, "valid_data: none in the checkpoint, given now"),
    ],
    ids=[
        "lr",
        "momentum",
        "adam",
        "batch_size",
        "seed",
        "key",
        "shape",
        "init",
        "data-size",
        "data",
        "valid",
    ],
)
def test_another_run_is_refused(ckpt, kw, match):
    _refused(ckpt, match, **kw)


def test_optimizer_hyperparameters_are_probed(tmp_path):
    """Changes a first update does not show: momentum, moment decay, clipping."""
    cases = [
        (optax.sgd(0.05, momentum=0.9), optax.sgd(0.05, momentum=0.5)),
        (optax.adam(0.05, b1=0.9), optax.adam(0.05, b1=0.8)),
        (optimizer("sgd", 0.05, clip_norm=1.0), optimizer("sgd", 0.05, clip_norm=5.0)),
    ]
    for i, (old, new) in enumerate(cases):
        ckpt = tmp_path / str(i)
        _fit(ckpt, opt=old)
        _refused(ckpt, "optimizer: other updates of probe gradients", opt=new)


def test_injected_hyperparameters_are_named(tmp_path):
    ckpt = tmp_path / "ckpt"
    _fit(ckpt, opt=optax.inject_hyperparams(optax.adam)(learning_rate=0.05))
    message = _refused(
        ckpt,
        "optimizer hyperparameter .hyperparams['learning_rate']: 0.05 in the "
        "checkpoint, 0.01 now",
        opt=optax.inject_hyperparams(optax.adam)(learning_rate=0.01),
    )
    assert "b1" not in message


def test_schedule_that_differs_only_later_is_refused_at_resume(tmp_path):
    """Equal over the initial probes (counts 0-2), different at count 4, where
    the run continues: the probe of the saved optimiser state sees it."""
    ckpt = tmp_path / "ckpt"
    old = optax.sgd(optax.piecewise_constant_schedule(0.05, {3: 0.5}))
    new = optax.sgd(optax.piecewise_constant_schedule(0.05, {3: 0.2}))
    _fit(ckpt, opt=old)
    _refused(ckpt, "optimizer: another update of a probe gradient at step 4", opt=new)


def test_the_same_run_resumes_and_says_from_where(ckpt, capfd):
    result = _fit(ckpt, epochs=2, progress=True)
    err = capfd.readouterr().err
    assert (
        f"fit: resuming from the verified checkpoint of step 4 in {ckpt} (epoch 2, "
        "batch 1 of 4)" in err
    )
    assert result.resumed_from == 4 and int(result.state.step) == 8
    again = _fit(ckpt, epochs=2, progress=True)
    assert "the run had finished all 2 epochs" in capfd.readouterr().err
    assert again.resumed_from == 8 and int(again.state.step) == 8


def test_resume_false_refuses_a_directory_with_checkpoints(ckpt):
    with pytest.raises(
        CheckpointMismatchError,
        match=r"checkpoint_dir: expected a directory without checkpoints with "
        r"resume=False, got .* with steps \[4\]",
    ):
        _fit(ckpt, resume=False)


@pytest.mark.parametrize(
    "opt,match",
    [
        (optax.sgd(-0.05), r"optimizer: expected updates that descend .*negative"),
        (optax.adam(-1e-3), r"optimizer: expected updates that descend"),
        (optax.sgd(0.0), r"optimizer: expected updates that move .*zero learning"),
        (optax.sgd(float("nan")), r"optimizer: expected finite updates"),
        (optax.sgd(lambda count: -0.1 * count), r"expected updates that descend"),
    ],
    ids=["sgd-negative", "adam-negative", "zero", "nan", "schedule-negative"],
)
def test_fit_refuses_an_optimizer_that_does_not_descend(opt, match):
    with pytest.raises(ValueError, match=match):
        _fit(None, opt=opt)


def test_fit_accepts_a_warmup_from_zero():
    warmup = optax.linear_schedule(0.0, 0.05, transition_steps=3)
    result = _fit(None, opt=optax.sgd(warmup))
    assert int(result.state.step) == 4


def test_fit_accepts_gradient_accumulation_and_text_data(tmp_path):
    """optax.MultiSteps applies every 4th update only (zero updates before);
    object arrays (texts featurised by collate) are fingerprinted too."""
    texts = np.array([f"review {i}" for i in range(32)], dtype=object)
    x, y = _data()

    def collate(batch):
        idx = np.array([int(t.split()[1]) for t in batch[0]])
        return x[idx], y[idx]

    common = dict(collate=collate, batch_size=8, progress=False)
    opt = optax.MultiSteps(optax.sgd(0.05), every_k_schedule=4)
    _fit(tmp_path / "ckpt", opt=opt, data=(texts,), **common)
    with pytest.raises(CheckpointMismatchError, match=r"train_data\[0\]: other values"):
        _fit(tmp_path / "ckpt", opt=opt, data=(texts[::-1].copy(),), epochs=2, **common)
