"""Small models and inputs shared by the model tests."""

from __future__ import annotations

import numpy as np
import pytest

from jaxseq import models

VOCAB = 50

#: Small options per registered model, so each test compiles in a second or two.
SMALL = {
    "lab": {},
    "elman": dict(embed_dim=6, hidden=5),
    "gru": dict(embed_dim=6, hidden=5),
    "lstm": dict(embed_dim=6, hidden=5, pooling="last"),
    "stacked_lstm": dict(embed_dim=6, hidden=5),
    "stacked_gru": dict(embed_dim=6, hidden=5, pooling="max"),
    "bilstm": dict(embed_dim=6, hidden=5, pooling="last"),
    "bigru": dict(embed_dim=6, hidden=5),
    "conv1d": dict(embed_dim=6, filters=4, widths=(2, 3)),
    "transformer": dict(dim=8, heads=2, ffn=16, blocks=2, head=(4,)),
    "bow": dict(scale="idf", normalize=True),
}


def small(name: str) -> models.Model:
    return models.build(name, vocab_size=VOCAB, **SMALL[name])


@pytest.fixture
def batch():
    """Right-padded ids [4, 9] (ids 2..VOCAB-1, never 0 inside) and lengths,
    including a length-0 row and a full-length row."""
    rng = np.random.default_rng(0)
    lengths = np.array([9, 5, 1, 0], np.int32)
    ids = rng.integers(2, VOCAB, size=(4, 9)).astype(np.int32)
    ids[np.arange(9)[None, :] >= lengths[:, None]] = 0
    return ids, lengths
