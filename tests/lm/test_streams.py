"""Token streams: one stream with <eos> between documents, batchify, chunks,
document starts, sources and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from jaxseq import lm, text
from jaxseq.data import imdb


def test_stream_layout_word_level():
    texts = ["the cat sat", "a dog", "the end"]
    vocab = lm.lm_vocabulary(texts[:2], text.word_tokenizer())
    assert vocab.tokens[lm.EOS_ID] == lm.EOS_TOKEN
    stream = lm.encode_stream(vocab, texts)
    tokens = [vocab.tokens[i] for i in stream.ids]
    # "end" is not in the training texts: [UNK]
    assert tokens == ["<eos>", "the", "cat", "sat", "<eos>", "a", "dog", "<eos>",
                      "the", "[UNK]", "<eos>"]  # fmt: skip
    assert np.flatnonzero(stream.starts).tolist() == [0, 4, 7]


def test_vocabulary_fitted_on_training_text_only():
    vocab = lm.lm_vocabulary(["abc"], text.char_tokenizer())
    stream = lm.encode_stream(vocab, ["abz"])
    assert [vocab.tokens[i] for i in stream.ids] == ["<eos>", "a", "b", "[UNK]",
                                                     "<eos>"]  # fmt: skip


def test_max_size_counts_reserved_ids():
    vocab = lm.lm_vocabulary(["a a a b b c"], text.word_tokenizer(), max_size=4)
    assert vocab.tokens == ("", "[UNK]", "<eos>", "a")


def test_chunks_read_consecutive_windows():
    n, batch, t = 47, 3, 4
    ids = np.arange(n, dtype=np.int32)
    starts = ids % 10 == 0
    chunks = lm.chunk_stream(lm.TokenStream(ids, starts), batch, t)
    width = n // batch
    assert chunks.num_chunks == (width - 1) // t
    rows = ids[: batch * width].reshape(batch, width)
    for b in range(batch):
        flat_in = np.concatenate(
            [chunks.inputs[i, b] for i in range(chunks.num_chunks)]
        )
        flat_out = np.concatenate(
            [chunks.targets[i, b] for i in range(chunks.num_chunks)]
        )
        flat_reset = np.concatenate(
            [chunks.resets[i, b] for i in range(chunks.num_chunks)]
        )
        span = chunks.num_chunks * t
        np.testing.assert_array_equal(flat_in, rows[b, :span])
        np.testing.assert_array_equal(flat_out, rows[b, 1 : span + 1])
        np.testing.assert_array_equal(flat_reset, rows[b, :span] % 10 == 0)


def test_imdb_sample_char_stream():
    reviews = imdb.load("train", source="sample")
    texts = reviews.texts[:20]
    vocab = lm.lm_vocabulary(texts, text.char_tokenizer())
    stream = lm.encode_stream(vocab, texts)
    assert int(stream.starts.sum()) == 20
    assert (stream.ids[stream.starts] == lm.EOS_ID).all()
    chunks = lm.chunk_stream(stream, 4, 32, vocab_size=len(vocab))
    assert chunks.inputs.shape[1:] == (4, 32)


def test_read_texts_file_and_folder(tmp_path):
    (tmp_path / "a.txt").write_text("first line\n\nsecond line\n", encoding="utf-8")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "b.txt").write_text("third\nfourth\n", encoding="utf-8")
    assert lm.read_texts(tmp_path / "a.txt") == ["first line", "second line"]
    assert lm.read_texts(tmp_path) == ["first line", "second line", "third", "fourth"]
    assert lm.read_texts(tmp_path, by="file") == ["first line\n\nsecond line",
                                                  "third\nfourth"]  # fmt: skip
    assert lm.read_texts(tmp_path / "a.txt", by="paragraph") == [
        "first line",
        "second line",
    ]
    assert lm.load_texts(tmp_path / "a.txt") == ["first line", "second line"]


def test_bad_input(tmp_path):
    stream = lm.TokenStream(np.arange(9, dtype=np.int32), np.zeros(9, bool))
    with pytest.raises(ValueError, match=r"stream: expected at least .* = 12 tokens"):
        lm.chunk_stream(stream, 2, 5)
    with pytest.raises(ValueError, match="chunk_len: expected a positive int, got 0"):
        lm.chunk_stream(stream, 2, 0)
    with pytest.raises(ValueError, match=r"stream.ids: expected token ids in \[0, 5\)"):
        lm.chunk_stream(stream, 2, 2, vocab_size=5)
    with pytest.raises(ValueError, match="batch_size"):
        lm.chunk_stream(stream, 0, 2)
    with pytest.raises(ValueError, match="vocab: expected '<eos>' at id 2"):
        lm.encode_stream(text.build_vocabulary(["a b"], text.word_tokenizer()), ["a"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        lm.read_texts(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match="expected .txt files"):
        lm.read_texts(tmp_path)
