"""A small IMDb-shaped task shared by the training tests and their subprocesses.

Batches are ``(ids [B, T], lengths [B], labels [B])`` NumPy arrays, as the text
pipeline produces: tokens 1..3 (0 pads), label 1 when token 1 occurs more often
than token 2 within the valid prefix. The model embeds, runs an LSTM over the
valid steps and reads the last carry out to a logit. The cell is an Elman cell
by default (quickest to compile) or an LSTM.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxseq

VOCAB, EMBED, HIDDEN = 4, 4, 8


def make_data(seed: int, n: int, max_len: int = 16, min_len: int = 3):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_len, max_len + 1, size=n).astype(np.int32)
    ids = rng.integers(1, VOCAB, size=(n, max_len)).astype(np.int32)
    valid = np.arange(max_len)[None, :] < lengths[:, None]
    ids = np.where(valid, ids, 0).astype(np.int32)
    labels = (((ids == 1) & valid).sum(1) > ((ids == 2) & valid).sum(1)).astype(
        np.float32
    )
    return ids, lengths, labels


def _cell(params):
    if isinstance(params["cell"], jaxseq.cells.LSTMParams):
        return jaxseq.cells.lstm(HIDDEN)
    return jaxseq.cells.elman(HIDDEN)


def init_params(key, cell="elman"):
    return _init_params(key, cell)


@functools.partial(jax.jit, static_argnums=1)  # one compile instead of many eager ops
def _init_params(key, cell):
    k_e, k_c, k_w = jax.random.split(key, 3)
    cell = getattr(jaxseq.cells, cell)(HIDDEN)
    return {
        "embed": jax.random.normal(k_e, (VOCAB, EMBED)) * 0.5,
        "cell": cell.init(k_c, EMBED),
        "w": jax.random.normal(k_w, (HIDDEN,)) / np.sqrt(HIDDEN),
        "b": jnp.zeros(()),
    }


def logits(params, ids, lengths, key=None):
    xs = params["embed"][ids]
    if key is not None:
        xs = jaxseq.nn.dropout(key, 0.1, xs)
    carry, _ = jaxseq.rnn(_cell(params), params["cell"], xs, lengths=lengths)
    return carry.h @ params["w"] + params["b"]


def loss_fn(params, batch, key):
    ids, lengths, labels = batch
    z = logits(params, ids, lengths, key)
    loss = optax.sigmoid_binary_cross_entropy(z, labels).mean()
    accuracy = ((z > 0) == (labels > 0.5)).mean()
    return loss, {"accuracy": accuracy}
