"""Edges of the language-model entry points: text files that are not UTF-8,
carry a byte order mark or CRLF line ends, ids that are not integers, and
command-line values just outside what the commands take."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from jaxseq import cli, lm
from jaxseq.lm.cli_generate import MAX_TOKENS


def _usage_error(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return err


def test_read_texts_reports_bytes_that_are_not_utf8(tmp_path, caplog):
    path = tmp_path / "latin1.txt"
    lines = ["plain line", "caf\u00e9 cr\u00e8me", "fine", "na\u00efve"]
    path.write_bytes("\n".join(lines).encode("latin-1"))
    with caplog.at_level(logging.WARNING, logger="jaxseq.lm"):
        docs = lm.read_texts(path)
    # the same documents as Python's own replacing decoder gives
    expected = path.read_bytes().decode("utf-8", errors="replace").split("\n")
    assert docs == expected
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert f"{path}: 2 lines were not valid UTF-8 (the first is line 2)" in message
    with pytest.raises(ValueError, match=r"latin1\.txt:2: expected UTF-8 text, got "
                       r"the byte 0xe9"):  # fmt: skip
        lm.read_texts(path, errors="strict")
    with pytest.raises(ValueError, match="errors: expected 'replace' or 'strict'"):
        lm.read_texts(path, errors="ignore")


def test_read_texts_of_valid_utf8_warns_nothing(tmp_path, caplog):
    path = tmp_path / "ok.txt"
    path.write_text("na\u00efve caf\u00e9\nsecond\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="jaxseq.lm"):
        assert lm.read_texts(path, errors="strict") == [
            "na\u00efve caf\u00e9",
            "second",
        ]
    assert not caplog.records


def test_read_texts_drops_a_byte_order_mark_and_reads_crlf(tmp_path):
    path = tmp_path / "windows.txt"
    content = "first line\r\nstill first\r\n\r\nsecond\r\n"
    path.write_bytes(b"\xef\xbb\xbf" + content.encode("utf-8"))
    unix = tmp_path / "unix.txt"
    unix.write_text(content.replace("\r\n", "\n"), encoding="utf-8")
    for by in ("line", "paragraph", "file"):
        assert lm.read_texts(path, by=by) == lm.read_texts(unix, by=by), by
    assert lm.read_texts(path, by="paragraph") == ["first line still first", "second"]
    # no byte order mark becomes a token of the first document
    assert not any("\ufeff" in d for d in lm.read_texts(path))


def test_chunk_stream_refuses_ids_that_are_not_integers():
    ids = np.arange(12, dtype=np.float64)
    stream = lm.TokenStream(ids, np.zeros(12, bool))
    with pytest.raises(TypeError, match="stream.ids: expected integer token ids, "
                       "got dtype float64"):  # fmt: skip
        lm.chunk_stream(stream, 2, 2)
    with pytest.raises(TypeError, match="stream.ids"):
        lm.batchify(stream, 2)
    # the integer stream of the same values chunks as the layout says
    c = lm.chunk_stream(stream._replace(ids=ids.astype(np.int32)), 2, 2)
    rows = np.arange(12).reshape(2, 6)
    assert np.array_equal(c.inputs[1], rows[:, 2:4])
    assert np.array_equal(c.targets[1], rows[:, 3:5])


def test_smallest_batch_and_chunk():
    """B = T = 1: every token but the last is an input, in order."""
    vocab = lm.lm_vocabulary(["a b c"], lm_tokenizer())
    stream = lm.encode_stream(vocab, ["a b c", "c b"])
    c = lm.chunk_stream(stream, 1, 1, vocab_size=len(vocab))
    n = stream.ids.size
    assert c.inputs.shape == (n - 1, 1, 1)
    assert np.array_equal(c.inputs.ravel(), stream.ids[:-1])
    assert np.array_equal(c.targets.ravel(), stream.ids[1:])
    assert np.array_equal(c.resets.ravel(), stream.starts[:-1])
    with pytest.raises(ValueError, match=r"expected at least batch_size \* "):
        lm.chunk_stream(stream, 1, n)  # T + 1 > N: no chunk


def lm_tokenizer():
    from jaxseq import text

    return text.word_tokenizer()


@pytest.mark.parametrize("tokens", [str(MAX_TOKENS + 1), "1000000000", "0", "-3"])
def test_generate_refuses_token_counts_outside_its_range(tokens, tmp_path, capsys):
    """Checked when parsing (before the run directory is read): a count of a
    billion would allocate a key and an output per step and prompt."""
    err = _usage_error(["generate", str(tmp_path), "the", "--tokens", tokens], capsys)
    assert f"argument --tokens: expected an integer in [1, {MAX_TOKENS}], got " in err


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "expected some text in"),
        (b"  \n\t\n", "expected some text in"),
    ],
)
def test_train_lm_names_data_for_a_file_without_text(content, message, tmp_path,
                                                     capsys):  # fmt: skip
    path = tmp_path / "corpus.txt"
    path.write_bytes(content)
    argv = ["train", "lm", "--data", str(path), "--out", str(tmp_path / "run")]
    assert cli.main([*argv, "--quiet"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert f"jaxseq train lm: error: --data {path}: {message}" in err


def test_train_lm_names_data_for_a_folder_without_txt_files(tmp_path, capsys):
    (tmp_path / "notes.md").write_text("some text\n", encoding="utf-8")
    assert cli.main(["train", "lm", "--data", str(tmp_path), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert f"--data {tmp_path}: expected .txt files under" in err


@pytest.mark.slow
def test_train_lm_warns_of_bytes_that_are_not_utf8(tmp_path, capsys):
    """A Latin-1 corpus trains (its bad bytes read as U+FFFD), and stderr says
    how many lines had them and where the first is."""
    path = tmp_path / "latin1.txt"
    lines = ["the cat sat on the mat", "a caf\u00e9 by the sea", "the dog ran"]
    path.write_bytes(("\n".join(lines * 6) + "\n").encode("latin-1"))
    argv = [
        "train", "lm", "--data", str(path), "--level", "char", "--model", "elman",
        "--hidden", "4", "--embed-dim", "4", "--batch-size", "2", "--chunk-len",
        "8", "--quiet", "--out", str(tmp_path / "run"),
    ]  # fmt: skip
    assert cli.main(argv) == 0
    err = capsys.readouterr().err
    assert f"jaxseq: {path}: 6 lines were not valid UTF-8 (the first is line 2)" in err
    vocab = lm.cli.load_run(str(tmp_path / "run"))[2]
    assert "\ufffd" in vocab.tokens


@pytest.mark.slow
def test_fewer_epochs_than_done_trains_nothing_and_says_so(tmp_path, capsys):
    """The same --out with a smaller --epochs: nothing is trained, and the
    result records the epochs the saved model has, not the smaller count."""
    import json

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat on the mat\na dog ran\n" * 6, encoding="utf-8")
    out = str(tmp_path / "run")
    argv = [
        "train", "lm", "--data", str(corpus), "--level", "char", "--model",
        "elman", "--hidden", "4", "--embed-dim", "4", "--batch-size", "2",
        "--chunk-len", "8", "--out", out, "--json",
    ]  # fmt: skip
    assert cli.main([*argv, "--epochs", "2", "--quiet"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["epochs"] == 2 and first["resumed_from"] is None
    assert cli.main([*argv, "--epochs", "1"]) == 0
    captured = capsys.readouterr()
    again = json.loads(captured.out)
    assert again["steps"] == first["steps"] and again["resumed_from"] == first["steps"]
    assert again["epochs"] == 2
    assert "already has 2 epoch(s) (--epochs 1)" in captured.err
    with open(f"{out}/result.json", encoding="utf-8") as f:
        assert json.load(f)["epochs"] == 2
