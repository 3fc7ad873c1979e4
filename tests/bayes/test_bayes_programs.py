"""Whole compiled programs on disk (jaxseq.bayes._programs): a later run loads the
sampler's program without tracing, gives the same draws as the jitted program,
and a damaged or foreign file is reported and never used."""

from __future__ import annotations

import hashlib
import os
import warnings

import jax
import numpy as np
import pytest

from jaxseq.bayes import _programs, compile_timer, default_prior, driver, sine_data
from jaxseq.bayes.dimension import HiddenUnits, check_hidden_units

CONFIG = driver.GibbsConfig(2)
LENGTHS = dict(num_warmup=15, num_samples=20, num_chains=2)


@pytest.fixture(scope="module")
def data():
    x, y = sine_data(5, 30)
    return (x - x.mean()) / x.std(), (y - y.mean()) / y.std()


def _run(data, key=0):
    return driver.run_chains(
        jax.random.key(key), *data, CONFIG, default_prior(1), **LENGTHS
    )


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """JAX's compilation cache in ``tmp_path`` (so programs are kept there), and
    an empty table of this process's loaded programs."""
    monkeypatch.setattr(driver, "_loaded", {})
    old = jax.config.jax_compilation_cache_dir
    jax.config.update("jax_compilation_cache_dir", str(tmp_path))
    try:
        yield tmp_path / _programs.FOLDER
    finally:
        jax.config.update("jax_compilation_cache_dir", old)


def _draws(chains):
    return np.concatenate(
        [np.asarray(a).reshape(a.shape[0], -1) for a in jax.tree.leaves(chains[:2])],
        axis=1,
    )


def test_a_saved_program_loads_without_tracing_and_gives_the_same_draws(
    data, cache, monkeypatch
):
    jitted = _draws(_run(data))  # the cache is on only through the fixture
    first = _draws(_run(data))  # compiles and saves
    (saved,) = cache.glob("*.bin")
    monkeypatch.setattr(driver, "_loaded", {})  # as in a new process
    traced = []
    monkeypatch.setattr(driver, "_advance", lambda *a: traced.append(a))
    with warnings.catch_warnings():
        warnings.simplefilter("error", _programs.ProgramCacheWarning)
        with compile_timer() as loading:
            chains = _run(data)
    loaded = _draws(chains)
    assert traced == []  # the jitted function was never called
    assert loading[0] > 0.0  # loading counts as compile time
    np.testing.assert_array_equal(first, jitted)
    np.testing.assert_array_equal(loaded, jitted)
    assert (np.asarray(chains.position.prec) > 0).all()  # no empty buffer rows
    assert saved.stat().st_size > 0


def test_a_damaged_file_is_reported_and_compiled_again(data, cache):
    # (every kind of damage that read() detects: the next test)
    expected = _draws(_run(data))
    (path,) = cache.glob("*.bin")
    raw = path.read_bytes()
    path.write_bytes(raw[:-100] + bytes([raw[-100] ^ 0x10]) + raw[-99:])
    driver._loaded.clear()
    with pytest.warns(_programs.ProgramCacheWarning, match="damaged"):
        again = _draws(_run(data))
    np.testing.assert_array_equal(again, expected)
    # the file was replaced by a good one
    driver._loaded.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error", _programs.ProgramCacheWarning)
        np.testing.assert_array_equal(_draws(_run(data)), expected)


def _file(key: str, payload: bytes, digest: str | None = None) -> bytes:
    digest = hashlib.sha256(payload).hexdigest() if digest is None else digest
    return _programs.MAGIC + key.encode() + b"\n" + digest.encode() + b"\n" + payload


def test_read_checks_the_magic_the_key_and_the_hash(tmp_path):
    path = tmp_path / "p.bin"
    payload = bytes(range(256)) * 3 + b"\n\n"
    path.write_bytes(_file("k1", payload))
    assert _programs.read(path, "k1") == payload
    bad = {
        "another program": _file("k2", payload),
        "SHA-256": _file("k1", payload, "0" * 64),
        "not a jaxseq": b"jaxseq compiled program 0\n" + _file("k1", payload)[26:],
    }
    for reason, raw in bad.items():
        path.write_bytes(raw)
        with pytest.raises(ValueError, match=reason):
            _programs.read(path, "k1")
    good = _file("k1", payload)
    cut_short = [good[:40], good[:-1], b""]  # in the header, the payload, empty
    flipped = good[:-5] + bytes([good[-5] ^ 1]) + good[-4:]
    for raw in [*cut_short, flipped]:
        path.write_bytes(raw)
        with pytest.raises(ValueError):
            _programs.read(path, "k1")


def test_the_key_covers_config_shapes_dtypes_shardings_and_source(monkeypatch):
    x = np.zeros((5, 2), np.float32)
    args = (x, np.int32(1))
    key = lambda static=CONFIG, args=args, options=None, extra="cpu": (
        _programs.program_key("p", static, args, options or {}, extra)
    )
    base = key()
    assert key() == base  # deterministic
    others = {
        key(static=driver.GibbsConfig(3)),
        key(static=driver.GibbsConfig(2, bias=False)),
        key(static=driver.GibbsConfig(2, proposal="rw+hmc")),
        key(args=(np.zeros((6, 2), np.float32), np.int32(1))),
        key(args=(x.astype(np.float16), np.int32(1))),
        key(args=((x,), np.int32(1))),
        key(args=(jax.device_put(x), np.int32(1))),  # committed to a device
        key(options={"xla_cpu_use_fusion_emitters": True}),
        key(extra="another cpu"),
    }
    assert base not in others and len(others) == 9
    flags = os.environ.get("XLA_FLAGS", "")
    monkeypatch.setenv("XLA_FLAGS", f"{flags} --xla_cpu_max_isa=SSE4_2".strip())
    assert key() != base
    monkeypatch.setenv("XLA_FLAGS", flags)
    monkeypatch.setattr(_programs, "_source_digest", lambda: "edited")
    assert key() != base


def test_a_variable_m_program_is_kept_too(data, cache):
    config = driver.GibbsConfig(3, dimension=check_hidden_units(HiddenUnits(max=3)))
    run = lambda: driver.run_chains(
        jax.random.key(1), *data, config, default_prior(1), **LENGTHS
    )
    first = run()
    driver._loaded.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error", _programs.ProgramCacheWarning)
        loaded = run()
    assert len(list(cache.glob("*.bin"))) == 1
    assert loaded.m.shape == (2, 20)
    np.testing.assert_array_equal(loaded.m, first.m)
    np.testing.assert_array_equal(_draws(loaded), _draws(first))


def test_programs_are_kept_only_beside_a_local_jax_cache(tmp_path):
    old = jax.config.jax_compilation_cache_dir
    try:
        for base, expected in [
            (None, None),
            ("gs://bucket/jax", None),
            (str(tmp_path), tmp_path / _programs.FOLDER),
        ]:
            jax.config.update("jax_compilation_cache_dir", base)
            assert _programs.folder() == expected
    finally:
        jax.config.update("jax_compilation_cache_dir", old)
