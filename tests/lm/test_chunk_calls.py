"""Several chunks per compiled call (``make_stream_train_steps``, the training
loops' default): the same updates, metrics and carry as one call per chunk (the
one-chunk step, itself checked against a reference in ``test_stateful``); a
non-finite step is not applied; the call plan tiles the chunks; ``fit_stream``
with groups matches one chunk a call and resumes mid-epoch to the same bits."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxseq import lm
from jaxseq.lm.stateful import (
    call_plan,
    chunk_group,
    make_stream_train_steps,
    train_epochs,
)
from jaxseq.lm.training import Checkpoints, fit_stream

V, B, T = 13, 3, 6


def _setup(dropout=0.25):
    model = lm.rnn_lm(V, cell="lstm", embed_dim=6, hidden=6, num_layers=2,
                      tied=True, dropout=dropout)  # fmt: skip
    rng = np.random.default_rng(0)
    ids = rng.integers(3, V, size=B * (12 * T + 1)).astype(np.int32)
    starts = rng.random(ids.shape) < 0.05  # document starts: carry resets
    chunks = lm.chunk_stream(lm.TokenStream(ids, starts), B, T, vocab_size=V)
    opt = optax.chain(optax.clip_by_global_norm(0.5), optax.adam(3e-2))
    params = model.init(jax.random.key(0))
    state = lm.init_stream_state(model, params, opt, jax.random.key(1), B)
    return model, opt, chunks, state


def _close(a, b, rtol=1e-5, atol=1e-6):
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb, strict=True):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


def test_group_equals_one_chunk_steps():
    model, opt, chunks, state = _setup()
    assert chunks.resets.any()
    copy = jax.tree.map(lambda a: a.copy(), state)
    one = lm.make_stream_train_step(model, opt)
    singles = []
    for i in range(5):
        state, m = one(state, chunks.chunk(i))
        singles.append(jax.device_get(m))
    steps = make_stream_train_steps(model, opt)
    grouped, metrics = steps(copy, chunk_group(chunks, 0, 5))
    assert int(grouped.train.step) == int(state.train.step) == 5
    _close(grouped.train, state.train)  # params, optimiser state, key
    _close(grouped.carry, state.carry)
    for name, values in jax.device_get(metrics).items():
        assert values.shape == (5,), name
        np.testing.assert_allclose(
            values, [m[name] for m in singles], rtol=1e-5, err_msg=name
        )
    assert float(metrics["count"][0]) == B * T  # every target of the chunk


def test_non_finite_step_is_not_applied_and_the_group_goes_on():
    model, opt, chunks, state = _setup(dropout=0.0)
    bad = dict(state.train.params)
    bad["embed"] = jnp.full_like(bad["embed"], jnp.nan)
    state = state._replace(train=state.train._replace(params=bad))
    before = jax.tree.map(np.asarray, state.train.params)
    steps = make_stream_train_steps(model, opt)
    after, metrics = steps(state, chunk_group(chunks, 2, 5))
    assert not np.asarray(metrics["finite"]).any()
    assert int(after.train.step) == 0
    for x, y in zip(jax.tree.leaves(after.train.params),
                    jax.tree.leaves(before), strict=True):  # fmt: skip
        assert np.asarray(x).tobytes() == y.tobytes()


@pytest.mark.parametrize("start, stop, k", [(0, 12, 5), (3, 12, 4), (7, 8, 10),
                                            (0, 9, 1), (2, 11, 9)])  # fmt: skip
def test_call_plan_tiles_the_chunks(start, stop, k):
    plan = call_plan(start, stop, k)
    flat = [i for a, b in plan for i in range(a, b)]
    assert flat == list(range(start, stop))
    sizes = [b - a for a, b in plan]
    full = (stop - start) // k
    assert sizes == [k] * full + [1] * ((stop - start) - full * k)


def test_chunk_group_and_chunks_per_call_errors():
    model, opt, chunks, state = _setup()
    with pytest.raises(ValueError, match="start, stop: expected 0 <= start"):
        chunk_group(chunks, 3, 3)
    with pytest.raises(ValueError, match="chunks_per_call: expected a positive"):
        fit_stream(model, opt, state, chunks, epochs=1, chunks_per_call=0)
    with pytest.raises(ValueError, match="chunks_per_call: expected a positive"):
        train_epochs(model, opt, state, chunks, chunks_per_call=0)


def test_train_epochs_groups_match_one_chunk_calls():
    model, opt, chunks, state = _setup()
    copy = jax.tree.map(lambda a: a.copy(), state)  # the steps donate the state
    a = train_epochs(model, opt, state, chunks, epochs=2, chunks_per_call=5)
    b = train_epochs(model, opt, copy, chunks, epochs=2, chunks_per_call=1)
    _close(a.state.train.params, b.state.train.params, rtol=1e-4, atol=1e-5)
    assert len(a.history) == len(b.history) == 2
    for ra, rb in zip(a.history, b.history, strict=True):
        np.testing.assert_allclose(ra["loss"], rb["loss"], rtol=1e-5)
        np.testing.assert_allclose(ra["grad_norm"], rb["grad_norm"], rtol=1e-4)


class _Stop(Exception):
    pass


def _records(history):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in history]


def test_fit_stream_groups_match_and_resume_mid_epoch_to_the_same_bits(tmp_path):
    model, opt, chunks, state = _setup()
    kw = dict(epochs=2, valid=chunks, log_every=5, chunks_per_call=4)
    whole = fit_stream(model, opt, state, chunks,
                       checkpoints=Checkpoints(tmp_path / "whole", every=7), **kw)  # fmt: skip
    ones = fit_stream(model, opt, state, chunks, **{**kw, "chunks_per_call": 1})
    _close(whole.state.train.params, ones.state.train.params, rtol=1e-4, atol=1e-5)
    for ra, rb in zip(whole.history, ones.history, strict=True):
        assert ra["step"] == rb["step"]
        np.testing.assert_allclose(ra["train_loss"], rb["train_loss"], rtol=1e-5)

    # stopped at the record of step 20 (epoch 2, chunk 8 of 12): the newest
    # checkpoint is that of step 14 (epoch 2, chunk 2), inside a 4-chunk span
    def stop_at_20(history):
        if history[-1]["step"] == 20:
            raise _Stop

    ckpt = Checkpoints(tmp_path / "killed", every=7)
    with pytest.raises(_Stop):
        fit_stream(model, opt, state, chunks, checkpoints=ckpt,
                   on_record=stop_at_20, **kw)  # fmt: skip
    again = fit_stream(model, opt, state, chunks, checkpoints=ckpt, **kw)
    assert again.resumed_from == 14
    for x, y in zip(jax.tree.leaves(again.state), jax.tree.leaves(whole.state),
                    strict=True):  # fmt: skip
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        assert np.asarray(x).tobytes() == np.asarray(y).tobytes()
    assert _records(again.history) == _records(whole.history)
