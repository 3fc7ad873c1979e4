"""Sampling by inverse CDF (jaxseq.lm.inverse_cdf_sample, used by next_token):
frequencies against the probabilities (chi-square goodness of fit), and the
top-k / top-p candidate sets respected.

Each chi-square test fails by chance with probability 1e-4 (its p-value
threshold) for draws from the right distribution on any CPU; a wrong
distribution (e.g. a token's mass moved to its neighbour) at these sample sizes
gives p-values far below it."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxseq import lm

N = 40_000
ALPHA = 1e-4
LOGITS = np.log(np.array([0.30, 0.20, 0.15, 0.10, 0.08, 0.06, 0.05, 0.03, 0.02,
                          0.005, 0.005]))  # fmt: skip


def _softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def _draws(config, logits=LOGITS, key=0):
    batch = jnp.broadcast_to(jnp.asarray(logits, jnp.float32), (N, len(logits)))
    return np.asarray(lm.next_token(jax.random.key(key), batch, config))


def _fits(draws, probs):
    """Chi-square goodness of fit over the tokens of positive probability; no
    draw outside them."""
    support = np.flatnonzero(probs > 0)
    assert np.isin(draws, support).all()
    counts = np.bincount(draws, minlength=len(probs))[support]
    expected = probs[support] / probs[support].sum() * draws.size
    assert expected.min() >= 5  # the chi-square approximation holds
    return stats.chisquare(counts, expected).pvalue


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_frequencies_match_softmax(temperature):
    draws = _draws(lm.sampling(temperature=temperature))
    assert _fits(draws, _softmax(LOGITS / temperature)) > ALPHA


def test_the_test_can_fail():
    """Moving half of token 2's mass to token 3 is detected."""
    draws = _draws(lm.sampling())
    p = _softmax(LOGITS)
    p[3] += p[2] / 2
    p[2] /= 2
    assert _fits(draws, p) < ALPHA


def test_top_k_and_top_p_respected_and_renormalised():
    p = _softmax(LOGITS)
    top3 = np.where(np.arange(len(p)) < 3, p, 0.0)  # LOGITS are sorted
    assert _fits(_draws(lm.sampling(top_k=3)), top3) > ALPHA
    # top_p 0.6: the smallest prefix of the sorted tokens with mass >= 0.6
    keep = np.cumsum(p) - p < 0.6
    nucleus = np.where(keep, p, 0.0)
    assert _fits(_draws(lm.sampling(top_p=0.6)), nucleus) > ALPHA


def test_impossible_tokens_never_drawn():
    for only in (0, 7, 10):  # first, middle and last position
        logits = np.full(11, -np.inf, np.float32)
        logits[only] = 0.0
        assert (_draws(lm.sampling(), logits) == only).all()
    logits = np.array([-np.inf, 1.0, -np.inf, 1.0, -np.inf], np.float32)
    draws = _draws(lm.sampling(), logits)
    assert _fits(draws, _softmax(logits)) > ALPHA


def test_shape_and_dtype():
    out = lm.inverse_cdf_sample(jax.random.key(0), jnp.zeros((2, 3, 5)))
    assert out.shape == (2, 3) and out.dtype == jnp.int32
