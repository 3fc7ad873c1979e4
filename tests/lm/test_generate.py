"""Generation: reproducible with a key; greedy equals the argmax of the model's
own teacher-forced log-probabilities; top-k and top-p never leave their
candidate sets; padding sides agree; stop tokens; one trace per padded shape."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseq import lm

V, NEW = 13, 8
PROMPTS = np.array([[3, 4, 5, 6], [7, 8, 0, 0], [9, 0, 0, 0]], np.int32)
LENGTHS = np.array([4, 2, 1], np.int32)


def _spread(params):
    # a larger readout so that the distribution is far from uniform
    return {**params, "out": params["out"]._replace(w=params["out"].w * 4.0)}


@pytest.fixture(scope="module")
def rnn():
    model = lm.rnn_lm(V, cell="lstm", embed_dim=6, hidden=6, num_layers=1)
    return model, _spread(model.init(jax.random.key(0)))


def _teacher_forced(model, params, prompt, tokens):
    """Log-probs of the model over prompt + tokens, one row, one call (padded
    after the end to one width: causal models ignore what follows)."""
    seq = np.concatenate([prompt, tokens])
    seq = np.pad(seq, (0, PROMPTS.shape[1] + NEW - len(seq)), constant_values=3)
    _, logits = _apply(model)(params, model.init_carry(params, 1), seq[None])
    return np.asarray(jax.nn.log_softmax(logits[0]))


_JITTED = {}


def _apply(model):
    key = id(model.apply)
    if key not in _JITTED:
        _JITTED[key] = (model, jax.jit(model.apply))  # keep model alive
    return _JITTED[key][1]


def _positions(model, params, out):
    """Per generated token: (row, j, token, log-probs at its position)."""
    for b in range(len(PROMPTS)):
        n = LENGTHS[b]
        tokens = np.asarray(out.tokens[b])
        logp = _teacher_forced(model, params, PROMPTS[b, :n], tokens)
        for j in range(NEW):
            yield b, j, tokens[j], logp[n - 1 + j]


def test_greedy_is_argmax_of_own_log_probs(rnn):
    model, params = rnn
    out = lm.generate(model, params, jax.random.key(0), PROMPTS, LENGTHS,
                      max_new_tokens=NEW)  # fmt: skip
    assert out.tokens.shape == (3, NEW) and out.lengths.tolist() == [NEW] * 3
    for b, j, tok, logp in _positions(model, params, out):
        assert tok == logp.argmax(), (b, j)
        np.testing.assert_allclose(out.log_probs[b, j], logp[tok], atol=1e-5)


def test_left_padding_equals_right_padding(rnn):
    model, params = rnn
    left = np.zeros_like(PROMPTS)
    for b, n in enumerate(LENGTHS):
        left[b, 4 - n :] = PROMPTS[b, :n]
    kw = dict(max_new_tokens=NEW, sampling=lm.sampling(temperature=1.5, top_k=3))
    a = lm.generate(model, params, jax.random.key(3), PROMPTS, LENGTHS, **kw)
    b = lm.generate(model, params, jax.random.key(3), left, LENGTHS, padding="left",
                    **kw)  # fmt: skip
    np.testing.assert_array_equal(a.tokens, b.tokens)


def test_same_key_same_tokens_and_top_k(rnn):
    model, params = rnn
    cfg = lm.sampling(temperature=1.5, top_k=3)
    a = lm.generate(model, params, jax.random.key(7), PROMPTS, LENGTHS,
                    max_new_tokens=NEW, sampling=cfg)  # fmt: skip
    b = lm.generate(model, params, jax.random.key(7), PROMPTS, LENGTHS,
                    max_new_tokens=NEW, sampling=cfg)  # fmt: skip
    np.testing.assert_array_equal(a.tokens, b.tokens)
    for _, _, tok, logp in _positions(model, params, a):
        assert tok in np.argsort(-logp)[:3]


def test_top_p_stays_in_nucleus(rnn):
    model, params = rnn
    p = 0.6
    out = lm.generate(model, params, jax.random.key(11), PROMPTS, LENGTHS,
                      max_new_tokens=NEW, sampling=lm.sampling(top_p=p))  # fmt: skip
    for _, _, tok, logp in _positions(model, params, out):
        order = np.argsort(-logp)
        probs = np.exp(logp[order])
        size = int(np.searchsorted(np.cumsum(probs), p) + 1)  # smallest set >= p
        assert tok in order[: size + 1]  # +1: float ties at the boundary


def test_filter_logits_against_numpy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 9)).astype(np.float32) * 2
    out = np.asarray(lm.filter_logits(logits, lm.sampling(temperature=0.5, top_k=4)))
    for row, got in zip(logits / 0.5, out, strict=True):
        keep = np.argsort(-row)[:4]
        np.testing.assert_allclose(got[keep], row[keep], rtol=1e-6)
        assert np.isneginf(np.delete(got, keep)).all()
    out = np.asarray(lm.filter_logits(logits, lm.sampling(top_p=0.5)))
    for row, got in zip(logits, out, strict=True):
        order = np.argsort(-row)
        probs = np.exp(row[order] - row.max())
        probs /= probs.sum()
        size = int((np.cumsum(probs) - probs < 0.5).sum())
        assert set(np.flatnonzero(np.isfinite(got))) == set(order[:size])


def test_stop_tokens(rnn):
    model, params = rnn
    first = lm.generate(model, params, jax.random.key(0), PROMPTS, LENGTHS,
                        max_new_tokens=NEW)  # fmt: skip
    stop = int(first.tokens[0, 2])
    out = lm.generate(model, params, jax.random.key(0), PROMPTS, LENGTHS,
                      max_new_tokens=NEW, stop_tokens=[stop])  # fmt: skip
    for b in range(3):
        row = np.asarray(first.tokens[b])
        hits = np.flatnonzero(row == stop)
        n = NEW if hits.size == 0 else hits[0] + 1
        assert int(out.lengths[b]) == n
        np.testing.assert_array_equal(out.tokens[b, :n], row[:n])
        assert (np.asarray(out.tokens[b, n:]) == 0).all()


def test_traced_once_per_padded_shape():
    base = lm.rnn_lm(V, cell="gru", embed_dim=4, hidden=4, num_layers=1)
    traces = []

    def apply(*args, **kwargs):
        traces.append(1)
        return base.apply(*args, **kwargs)

    model = base._replace(apply=apply)
    params = model.init(jax.random.key(0))
    gen = lm.make_generator(model, max_new_tokens=5, sampling=lm.sampling(top_k=4))
    gen(params, jax.random.key(0), jnp.asarray(PROMPTS), jnp.asarray(LENGTHS))
    n = len(traces)
    other = jnp.asarray(PROMPTS[::-1] + 1)
    gen(params, jax.random.key(1), other, jnp.asarray([1, 3, 4], jnp.int32))
    lm.generate(model, params, jax.random.key(2), other, [2, 2, 2], max_new_tokens=5,
                sampling=lm.sampling(top_k=4))  # fmt: skip
    assert n > 0 and len(traces) == n


@pytest.mark.slow
def test_transformer_greedy_is_argmax():
    model = lm.transformer_lm(V, dim=8, heads=2, ffn=16, blocks=1, context=16,
                              tied=False)  # fmt: skip
    params = {**model.init(jax.random.key(0))}
    params["out"] = params["out"]._replace(w=params["out"].w * 4)
    out = lm.generate(model, params, jax.random.key(0), PROMPTS, LENGTHS,
                      max_new_tokens=NEW)  # fmt: skip
    for b, j, tok, logp in _positions(model, params, out):
        assert tok == logp.argmax(), (b, j)


def test_errors(rnn):
    model, params = rnn
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="temperature: expected a finite value > 0"):
        lm.sampling(temperature=0.0)
    lm.sampling(greedy=True, temperature=0.0)  # unused when greedy
    with pytest.raises(ValueError, match="top_k: expected None or an int >= 1, got 0"):
        lm.sampling(top_k=0)
    with pytest.raises(
        ValueError, match=r"top_p: expected None or a value in \(0, 1\]"
    ):
        lm.sampling(top_p=0.0)
    with pytest.raises(ValueError, match="top_p"):
        lm.sampling(top_p=1.5)
    with pytest.raises(
        ValueError, match="top_k: expected at most the vocabulary size 13"
    ):
        lm.generate(model, params, key, PROMPTS, max_new_tokens=2,
                    sampling=lm.sampling(top_k=14))  # fmt: skip
    with pytest.raises(ValueError, match="prompts: expected at least one token"):
        lm.generate(model, params, key, np.zeros((2, 0), np.int32), max_new_tokens=2)
    with pytest.raises(
        ValueError, match=r"lengths: expected each prompt length in \[1, 4\]"
    ):
        lm.generate(model, params, key, PROMPTS, [4, 0, 1], max_new_tokens=2)
    with pytest.raises(ValueError, match=r"prompts: expected token ids in \[0, 13\)"):
        lm.generate(model, params, key, [3, 13], max_new_tokens=2)
    with pytest.raises(ValueError, match="max_new_tokens: expected a positive int"):
        lm.generate(model, params, key, PROMPTS, max_new_tokens=0)
    with pytest.raises(ValueError, match="padding"):
        lm.generate(model, params, key, PROMPTS, max_new_tokens=2, padding="both")


def _table_transposes(hlo: str, vocab: int, dim: int) -> list[str]:
    """Lines of an optimised HLO module that lay out a ``[D, V]`` transpose."""
    shape = f"f32[{dim},{vocab}]"
    return [
        line.strip()
        for line in hlo.splitlines()
        if shape in line.split("=", 1)[-1].split("(", 1)[0]
        and ("transpose" in line or "copy" in line)
    ]


def test_tied_readout_does_not_transpose_the_table_per_token():
    # hs @ table.T made XLA (CPU) lay the [D, V] transpose out inside the loop:
    # a copy of the whole table per generated token (7x slower at V = 10k).
    vocab, dim = 997, 24
    model = lm.rnn_lm(vocab, cell="lstm", embed_dim=dim, hidden=dim, tied=True)
    params = model.init(jax.random.key(0))
    gen = lm.make_generator(model, max_new_tokens=4, sampling=lm.sampling())
    prompts = jnp.ones((1, 3), jnp.int32)
    lengths = jnp.array([3], jnp.int32)
    hlo = gen.lower(params, jax.random.key(1), prompts, lengths).compile().as_text()
    assert not _table_transposes(hlo, vocab, dim)
