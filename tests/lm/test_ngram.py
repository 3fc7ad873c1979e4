"""The Kneser-Ney baseline against the equations written here independently
(dict counting, one probability at a time) and a hand-computed example."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest

from jaxseq.lm.ngram import (
    estimate_discounts,
    fit_kneser_ney,
    kn_log_probs,
    kn_perplexity,
    kn_probs,
)


def _discounts(counts):
    n = [sum(1 for c in counts if c == k) for k in (1, 2, 3, 4)]
    y = n[0] / (n[0] + 2 * n[1]) if n[0] + 2 * n[1] else 0.0
    out = []
    for k in (1, 2, 3):
        d = k - (k + 1) * y * (n[k] / n[k - 1] if n[k - 1] else 0.0)
        out.append(min(max(d, 0.0), float(k)))
    return out


class ReferenceKN:
    """Chen & Goodman's interpolated modified Kneser-Ney, from the equations."""

    def __init__(self, ids, vocab, order):
        self.v, self.n = vocab, order
        ids = [int(i) for i in ids]
        grams = {
            k: [tuple(ids[i : i + k]) for i in range(len(ids) - k + 1)]
            for k in range(1, order + 2)
        }
        self.counts, self.disc = {}, {}
        for k in range(1, order + 1):
            if k == order:
                c = Counter(grams[k])
            else:  # N1+(. g): distinct words seen before g
                c = Counter(g[1:] for g in set(grams[k + 1]))
            self.counts[k] = c
            self.disc[k] = _discounts(list(c.values()))

    def prob(self, context, w):
        context = tuple(context)[len(context) - min(len(context), self.n - 1) :]
        p = 1.0 / self.v
        for k in range(1, len(context) + 2):
            h = context[len(context) - (k - 1) :] if k > 1 else ()
            follow = {g[-1]: c for g, c in self.counts[k].items() if g[:-1] == h}
            total = sum(follow.values())
            if total == 0:
                continue
            d1, d2, d3 = self.disc[k]

            def dk(c, d1=d1, d2=d2, d3=d3):
                return 0.0 if c == 0 else d1 if c == 1 else d2 if c == 2 else d3

            gamma = sum(dk(c) for c in follow.values()) / total
            c = follow.get(w, 0)
            p = max(c - dk(c), 0.0) / total + gamma * p
        return p


def test_hand_computed_bigram():
    # stream 2 3 4 3 4 2, V = 5, all discounts 0.5 (worked by hand):
    # continuation counts N1+(.w): 3 -> 2 (after 2, 4), 4 -> 1, 2 -> 1; total 4
    # gamma() = 0.5 * 3 / 4 = 0.375; p1(w) = max(c - 0.5, 0) / 4 + 0.375 / 5
    p1 = np.array([0.075, 0.075, 0.2, 0.45, 0.2])
    # after 3: "3 4" twice; c(3) = 2, gamma(3) = 0.5 * 1 / 2 = 0.25
    p_after_3 = 0.25 * p1
    p_after_3[4] += (2 - 0.5) / 2
    kn = fit_kneser_ney(
        np.array([2, 3, 4, 3, 4, 2]), 5, order=2, discounts=[[0.5] * 3] * 2
    )
    np.testing.assert_allclose(kn_probs(kn, []), p1, rtol=1e-12)
    np.testing.assert_allclose(kn_probs(kn, [3]), p_after_3, rtol=1e-12)
    assert kn_probs(kn, [3])[4] == pytest.approx(0.8)
    # context 1 never seen: backs off to the unigram level entirely
    np.testing.assert_allclose(kn_probs(kn, [1]), p1, rtol=1e-12)


def test_discount_estimates_by_hand():
    # n1 = 3, n2 = 2, n3 = 1, n4 = 1 -> Y = 3/7
    got = estimate_discounts(np.array([1, 1, 1, 2, 2, 3, 4]))
    np.testing.assert_allclose(got, [3 / 7, 2 - 9 / 14, 3 - 12 / 7], rtol=1e-12)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_matches_reference_and_sums_to_one(order):
    rng = np.random.default_rng(order)
    v = 7
    # skewed draws so that counts of 1, 2, 3, 4+ all occur
    ids = rng.choice(v - 1, size=400, p=np.r_[0.4, 0.25, 0.15, 0.1, 0.06, 0.04]) + 1
    kn = fit_kneser_ney(ids, v, order=order)
    ref = ReferenceKN(ids, v, order)
    for k in range(1, order + 1):
        np.testing.assert_allclose(kn.orders[k - 1].discounts, ref.disc[k], rtol=1e-12)
    contexts = [c for m in range(order) for c in itertools.product(range(v), repeat=m)]
    for ctx in contexts[:: max(1, len(contexts) // 40)] + [(0,) * (order - 1)]:
        p = kn_probs(kn, ctx)
        assert p.sum() == pytest.approx(1.0, abs=1e-12)
        assert (p > 0).all()
        want = [ref.prob(ctx, w) for w in range(v)]
        np.testing.assert_allclose(p, want, rtol=1e-10)


def test_log_probs_of_a_stream_follow_the_contexts():
    rng = np.random.default_rng(5)
    train, test = rng.integers(1, 6, 300), rng.integers(0, 6, 60)
    kn = fit_kneser_ney(train, 6, order=3)
    lp = kn_log_probs(kn, test)
    want = [
        np.log(kn_probs(kn, test[max(0, t - 2) : t])[test[t]]) for t in range(1, 60)
    ]
    np.testing.assert_allclose(lp, want, rtol=1e-12)
    assert kn_perplexity(kn, test) == pytest.approx(np.exp(-np.mean(want)))


def test_unseen_contexts_back_off():
    ids = np.array([1, 2, 3, 1, 2, 3, 1, 2])
    kn = fit_kneser_ney(ids, 6, order=3, discounts=[[0.5] * 3] * 3)
    # (5, 5) and (5,) never occur: the trigram and bigram levels back off
    np.testing.assert_allclose(kn_probs(kn, [5, 5]), kn_probs(kn, []), rtol=1e-12)
    # (5, 1) unseen, (1,) seen: equals the bigram distribution after 1
    np.testing.assert_allclose(kn_probs(kn, [5, 1]), kn_probs(kn, [1]), rtol=1e-12)
    assert kn_probs(kn, [1])[2] > 0.5
    assert kn_probs(kn, [4])[0] > 0  # unseen words keep the uniform share


def test_uniform_model_has_perplexity_v():
    # every id once, D1 = 1: all unigram mass moves to the uniform 1 / V
    v = 11
    kn = fit_kneser_ney(np.arange(v), v, order=1, discounts=[[1.0, 2.0, 3.0]])
    np.testing.assert_allclose(kn_probs(kn, []), np.full(v, 1 / v), rtol=1e-12)
    stream = np.random.default_rng(0).integers(0, v, 200)
    assert kn_perplexity(kn, stream) == pytest.approx(v, rel=1e-12)


def test_more_data_lowers_perplexity_on_a_markov_chain():
    rng = np.random.default_rng(1)
    v = 5
    trans = rng.dirichlet(np.full(v, 0.3), size=v)

    def chain(n):
        out = [0]
        for _ in range(n - 1):
            out.append(rng.choice(v, p=trans[out[-1]]))
        return np.array(out)

    test = chain(2000)
    ppl = [
        kn_perplexity(fit_kneser_ney(chain(n), v, order=2), test) for n in (50, 3000)
    ]
    # the true chain's perplexity is a floor; more data gets close to it
    entropy = -np.mean(np.log(trans[test[:-1], test[1:]]))
    assert ppl[1] < ppl[0]
    assert ppl[1] < np.exp(entropy) * 1.05


def test_bad_input():
    with pytest.raises(ValueError, match=r"ids: expected token ids in \[0, 4\)"):
        fit_kneser_ney(np.array([1, 2, 4]), 4)
    with pytest.raises(ValueError, match="ids: expected at least order = 3"):
        fit_kneser_ney(np.array([1, 2]), 4)
    with pytest.raises(ValueError, match="order: expected a positive int"):
        fit_kneser_ney(np.array([1, 2]), 4, order=0)
    with pytest.raises(ValueError, match=r"discounts: expected shape \(3, 3\)"):
        fit_kneser_ney(np.array([1, 2, 3]), 4, discounts=[[0.5] * 3])
    with pytest.raises(ValueError, match="order: expected vocab_size"):
        fit_kneser_ney(np.array([1, 2, 3]), 10**7, order=3)
    kn = fit_kneser_ney(np.array([1, 2, 3]), 4)
    with pytest.raises(ValueError, match="context: expected token ids"):
        kn_probs(kn, [9])
    with pytest.raises(ValueError, match="ids: expected one stream"):
        kn_log_probs(kn, np.array([1]))
