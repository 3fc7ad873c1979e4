"""Whole-model save/load (:mod:`jaxseq.io`): round trips, and clear refusals of
corrupt, mismatched and other-version files."""

from __future__ import annotations

import json
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxseq
from jaxseq import io
from jaxseq.cells._dropout import recurrent_dropout

F = 3


def model_params(key=0):
    layer = jaxseq.stack(jaxseq.cells.lstm(4), num_layers=2, bidirectional=True)
    return layer, layer.init(jax.random.key(key), F)


def assert_trees_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(
            np.asarray(x, np.float32), np.asarray(y, np.float32)
        )


def test_whole_model_round_trip(tmp_path):
    layer, lp = model_params()
    params = {
        "embed": jnp.arange(12.0).reshape(6, 2),
        "rnn": lp,
        "head": (jnp.ones((8, 1), jnp.bfloat16), None, [jnp.int32(3)]),
    }
    config = {"layer": io.layer_config(layer, lp), "num_classes": 1}
    io.save(
        tmp_path / "m", config=config, params=params, vocab={"a": 2}, extra={"acc": 0.9}
    )
    saved = io.load(tmp_path / "m")
    assert saved.config == config and saved.extra == {"acc": 0.9}
    assert saved.vocab == {"a": 2} and saved.version == io.FORMAT_VERSION
    assert_trees_equal(saved.params, params)
    assert isinstance(saved.params["rnn"][0], jaxseq.BiParams)
    with np.load(tmp_path / "m" / io.ARRAYS_FILE, allow_pickle=False) as z:
        assert "params['rnn'][1].bw.w_h" in z.files


CONFIGS = {
    "lstm_bidi": lambda: jaxseq.stack(
        jaxseq.cells.lstm(4, forget_bias=0.5), 2, bidirectional=True, merge="sum"
    ),
    "gru_seed_reverse": lambda: jaxseq.stack(
        jaxseq.cells.gru(4, reset_after=False), reverse=True
    ),
    "mixed_dropout": lambda: jaxseq.stack(
        [
            jaxseq.cells.elman(4, activation="relu"),
            recurrent_dropout(jaxseq.cells.gru(5), 0.2),
        ],
        dropout=0.1,
    ),
    "bf16": lambda: jaxseq.stack(jaxseq.cells.lstm(4, dtype=jnp.bfloat16)),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_layer_round_trip_rebuilds_the_same_function(name, tmp_path):
    layer = CONFIGS[name]()
    params = layer.init(jax.random.key(1), F)
    io.save_layer(tmp_path / name, layer, params)
    layer2, params2 = io.load_layer(tmp_path / name)
    assert_trees_equal(params2, params)
    assert [(c.name, c.hidden_size, c.options) for c in layer2.cells] == [
        (c.name, c.hidden_size, c.options) for c in layer.cells
    ]
    assert layer2[3:] == layer[3:]  # bidirectional, merge, dropout, reverse, size
    xs = jax.random.normal(jax.random.key(2), (2, 5, F))
    np.testing.assert_array_equal(
        layer2.apply(params2, xs)[1], layer.apply(params, xs)[1]
    )


def test_vocabulary_round_trip(tmp_path):
    from jaxseq import text

    vocab = text.build_vocabulary(["a fine film", "a dull film"], text.word_tokenizer())
    layer, params = model_params()
    io.save_layer(tmp_path / "m", layer, params, vocab=vocab)
    loaded = io.load(tmp_path / "m").vocab
    assert isinstance(loaded, text.Vocabulary) and loaded.tokens == vocab.tokens


def saved(tmp_path):
    layer, params = model_params()
    io.save_layer(tmp_path / "m", layer, params)
    return tmp_path / "m"


def edit_header(path, fn):
    file = path / io.CONFIG_FILE
    header = json.loads(file.read_text())
    fn(header)
    file.write_text(json.dumps(header))


def test_refuses_other_versions(tmp_path):
    path = saved(tmp_path)
    edit_header(path, lambda h: h.update(version=2))
    with pytest.raises(
        ValueError, match=r"format version: expected 1, got 2 \(written by a newer"
    ):
        io.load(path)
    edit_header(path, lambda h: h.update(version=1, format="something.else"))
    with pytest.raises(ValueError, match="not a saved jaxseq model"):
        io.load(path)


def test_shape_mismatch_names_the_leaf(tmp_path):
    path = saved(tmp_path)
    with np.load(path / io.ARRAYS_FILE) as z:
        arrays = dict(z)
    arrays["params[1].fw.w_x"] = np.zeros((7, 16), np.float32)
    np.savez(path / io.ARRAYS_FILE, **arrays)
    with pytest.raises(
        ValueError,
        match=r"params\[1\].fw.w_x: expected shape \(8, 16\) .*got \(7, 16\)",
    ):
        io.load(path)


def test_config_mismatch_names_the_leaf(tmp_path):
    path = saved(tmp_path)
    edit_header(path, lambda h: h["config"]["layer"]["cells"][1].update(hidden_size=5))
    with pytest.raises(
        ValueError, match=r"params\[1\].fw.w_x: expected shape \(8, 20\), got \(8, 16\)"
    ):
        io.load_layer(path)
    _, params = model_params()
    like = jax.eval_shape(lambda: params[:1])
    with pytest.raises(ValueError, match="expected the structure"):
        io.load(saved(tmp_path / "x"), like=like)


def test_corrupt_and_unsafe_files(tmp_path):
    path = saved(tmp_path)
    (path / io.CONFIG_FILE).write_text("{not json")
    with pytest.raises(ValueError, match="corrupt JSON"):
        io.load(path)
    path = saved(tmp_path / "b")
    (path / io.ARRAYS_FILE).write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match="unreadable"):
        io.load(path)
    # an object array (which would need pickle) is refused by allow_pickle=False
    path = saved(tmp_path / "c")
    with np.load(path / io.ARRAYS_FILE) as z:
        arrays = dict(z)
    arrays["params[0].fw.b"] = np.array([object()] * 16, dtype=object)
    np.savez(path / io.ARRAYS_FILE, **arrays)
    with pytest.raises(
        ValueError, match=r"params.npz: array params\[0\].fw.b is unreadable .*pickle"
    ):
        io.load(path)
    # unknown type names are never imported
    path = saved(tmp_path / "d")
    edit_header(path, lambda h: h["params"]["tuple"][0].update(namedtuple="os.system"))
    with pytest.raises(ValueError, match="unknown NamedTuple type 'os.system'"):
        io.load(path)
    with zipfile.ZipFile(path / io.ARRAYS_FILE, "a") as z:
        z.writestr("stray.npy", b"")
    with pytest.raises(ValueError):
        io.load(path, types={"os.system": jaxseq.BiParams})


def test_save_refusals(tmp_path):
    layer, params = model_params()
    io.save_layer(tmp_path / "m", layer, params)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        io.save_layer(tmp_path / "m", layer, params)
    io.save_layer(tmp_path / "m", layer, params, overwrite=True)
    (tmp_path / "other").mkdir()
    with pytest.raises(FileExistsError, match="refusing to replace"):
        io.save_layer(tmp_path / "other", layer, params, overwrite=True)
    with pytest.raises(TypeError, match=r"params\['f'\]: expected an array leaf"):
        io.save(tmp_path / "n", config={}, params={"f": print})
    with pytest.raises(TypeError, match="JSON-serialisable"):
        io.save(tmp_path / "n", config={"x": object()}, params={})
    custom = jaxseq.stack(jaxseq.cells.elman(4, activation=jnp.sin))
    with pytest.raises(ValueError, match="built-in cell"):
        io.layer_config(custom, custom.init(jax.random.key(0), F))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "other"]


def damage(file, offset_in_member: int, member: int = 0) -> str:
    """Flip one byte inside the data of a member of the zip ``file``; return the
    member's name."""
    with zipfile.ZipFile(file) as z:
        info = z.infolist()[member]
    data = bytearray(file.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + offset_in_member] ^= 0xFF
    file.write_bytes(bytes(data))
    return info.filename.removesuffix(".npy")


@pytest.mark.parametrize("where", ["npy header", "array data"])
def test_crc_error_in_params_names_the_file(tmp_path, where):
    path = saved(tmp_path)
    file = path / io.ARRAYS_FILE
    leaf = damage(file, 20 if where == "npy header" else 140)
    with pytest.raises(ValueError, match="BadZipFile: Bad CRC-32") as err:
        io.load(path)
    assert f"{file}: array {leaf} is unreadable" in str(err.value)


def test_damaged_compressed_params_name_the_file(tmp_path):
    path = saved(tmp_path)
    file = path / io.ARRAYS_FILE
    with np.load(file) as z:
        arrays = dict(z)
    np.savez_compressed(file, **arrays)
    with zipfile.ZipFile(file) as z:
        middle = z.infolist()[0].compress_size // 2
    damage(file, middle)
    with pytest.raises(ValueError, match=r"is unreadable \((BadZipFile|error)") as err:
        io.load(path)
    assert str(file) in str(err.value)


@pytest.mark.parametrize("keep", [0.5, 0.99])
def test_truncated_params_name_the_file(tmp_path, keep):
    path = saved(tmp_path)
    file = path / io.ARRAYS_FILE
    data = file.read_bytes()
    file.write_bytes(data[: int(keep * len(data))])
    with pytest.raises(ValueError, match="truncated or corrupt") as err:
        io.load(path)
    assert str(file) in str(err.value)


def test_missing_files_are_named(tmp_path):
    path = saved(tmp_path)
    (path / io.ARRAYS_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="incomplete") as err:
        io.load(path)
    assert str(path / io.ARRAYS_FILE) in str(err.value)
    with pytest.raises(FileNotFoundError, match="no jaxseq.json; not a saved model"):
        io.load(tmp_path / "nothing")
    from jaxseq import text

    layer, params = model_params()
    fitted = text.build_vocabulary(["a film"], text.word_tokenizer())
    for vocab in ({"a": 2}, fitted):
        io.save_layer(tmp_path / "v", layer, params, vocab=vocab, overwrite=True)
        (tmp_path / "v" / io.VOCAB_FILE).unlink()
        with pytest.raises(FileNotFoundError, match="records a vocabulary") as err:
            io.load(tmp_path / "v")
        assert str(tmp_path / "v" / io.VOCAB_FILE) in str(err.value)


@pytest.mark.parametrize(
    ("content", "match"),
    [(b"{not json", "corrupt JSON"), (b'["a"]', "expected a JSON object")],
)
def test_corrupt_vocab_mapping_names_the_file(tmp_path, content, match):
    layer, params = model_params()
    io.save_layer(tmp_path / "m", layer, params, vocab={"a": 2})
    (tmp_path / "m" / io.VOCAB_FILE).write_bytes(content)
    with pytest.raises(ValueError, match=match) as err:
        io.load(tmp_path / "m")
    assert str(tmp_path / "m" / io.VOCAB_FILE) in str(err.value)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda c: c.pop("cells"), r"config.cells: expected a non-empty list"),
        (lambda c: c.update(cells=[3]), r"config.cells\[0\]: expected a dict"),
        (
            lambda c: c["cells"][1].update(hidden_size="4"),
            r"config.cells\[1\].hidden_size: expected an int >= 1, got '4'",
        ),
        (lambda c: c.pop("input_size"), "config.input_size: expected an int >= 1"),
        (lambda c: c["cells"][0].update(name="rnn"), r"config.cells\[0\].name"),
    ],
)
def test_malformed_layer_config_names_the_file_and_field(tmp_path, edit, match):
    path = saved(tmp_path)
    edit_header(path, lambda h: edit(h["config"]["layer"]))
    with pytest.raises(ValueError, match=match) as err:
        io.load_layer(path)
    assert str(path / io.CONFIG_FILE) in str(err.value)


def test_malformed_pytree_entry_names_the_config(tmp_path):
    path = saved(tmp_path)
    edit_header(path, lambda h: h["params"]["tuple"][0].update(fields=["fw", "bw"]))
    with pytest.raises(ValueError, match="bad pytree") as err:
        io.load(path)
    assert str(path / io.CONFIG_FILE) in str(err.value)
