"""The vectorised Gibbs driver: one cached program for every run length, the
kernel's own sweeps, the persistent-cache settings and the Gamma variates."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as st

from jaxseq.bayes import compile_timer, default_prior, driver, sine_data
from jaxseq.bayes import conditionals as cond

CONFIG = driver.GibbsConfig(2)


@pytest.fixture(scope="module")
def data():
    x, y = sine_data(3, 40)
    return (x - x.mean()) / x.std(), (y - y.mean()) / y.std()


def _run(data, key=0, **lengths):
    settings = dict(num_warmup=20, num_samples=30, num_chains=3) | lengths
    return driver.run_chains(
        jax.random.key(key), *data, CONFIG, default_prior(1), **settings
    )


@pytest.fixture(scope="module")
def chains(data):
    return _run(data)


def test_shapes_and_sites(chains, data):
    assert chains.position.gamma.shape == (3, 30, 2, 2)
    assert chains.position.prec.shape == (3, 30)
    assert chains.info.accept_rw.shape == (3, 30, 2)
    assert chains.state.i.tolist() == [50, 50, 50]
    assert np.isfinite(np.asarray(chains.info.loglik)).all()
    # chains differ (one key per chain)
    assert not np.allclose(chains.position.prec[0], chains.position.prec[1])


def test_other_lengths_and_thinning_reuse_the_program(chains, data):
    with compile_timer() as compiled:
        more = _run(data, key=1, num_warmup=7, num_samples=2 * driver.CHUNK + 9)
        thin = _run(data, key=2, num_samples=31, thinning=3)
    assert compiled[0] == 0.0
    assert more.position.beta.shape == (3, 2 * driver.CHUNK + 9, 2)
    assert more.state.i.tolist() == [7 + 2 * driver.CHUNK + 9] * 3
    assert thin.position.beta.shape == (3, 10, 2)  # 31 // 3 kept
    assert thin.state.i.tolist() == [20 + 30] * 3  # 10 records of 3 sweeps
    # no zero-filled rows from the fixed-size buffers
    assert (np.asarray(more.position.prec) > 0).all()


def test_same_key_same_draws_and_adaptation_frozen_after_warmup(chains, data):
    again = _run(data)
    np.testing.assert_array_equal(again.position.gamma, chains.position.gamma)
    longer = _run(data, num_samples=60)
    # warm-up ends at sweep 20 in both: the proposals after it agree
    np.testing.assert_allclose(
        longer.state.proposal.log_scale, chains.state.proposal.log_scale
    )


@pytest.mark.slow  # compiles a second configuration
def test_sample_sites_drops_b0_without_bias(data):
    config = driver.GibbsConfig(1, bias=False, proposal="rw")
    sites, info = driver.sample_sites(
        jax.random.key(0),
        *data,
        config,
        default_prior(1),
        num_warmup=2,
        num_samples=3,
        num_chains=2,
    )
    assert "b0" not in sites and sites["beta"].shape == (2, 3, 1)
    assert np.isnan(np.asarray(info.accept_scale)).all()  # move not used


def test_compile_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(driver.CACHE_ENV, str(tmp_path / "c"))
    assert driver.compile_cache_dir() == tmp_path / "c"
    for off in ("0", "off", "", "false"):
        monkeypatch.setenv(driver.CACHE_ENV, off)
        assert driver.compile_cache_dir() is None
        if not jax.config.jax_compilation_cache_dir:
            assert driver.enable_compile_cache() is None
    monkeypatch.delenv(driver.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert driver.compile_cache_dir() == tmp_path / "jaxseq" / "jax"


def _cpuinfo(vendor: str, family: int, model: int, flags: str) -> str:
    block = (
        f"processor\t: {{i}}\nvendor_id\t: {vendor}\ncpu family\t: {family}\n"
        f"model\t\t: {model}\nmodel name\t: some CPU\nflags\t\t: {flags}\n"
    )
    return "\n".join(block.format(i=i) for i in range(2))


def test_cache_folder_names_the_cpu(tmp_path):
    base = "fpu sse sse2 avx avx2 fma"
    zen4 = _cpuinfo("AuthenticAMD", 25, 17, base + " avx512f avx512bw")
    tags = {
        driver.host_cpu_tag(zen4),
        driver.host_cpu_tag(_cpuinfo("AuthenticAMD", 25, 17, base)),  # no AVX-512
        driver.host_cpu_tag(_cpuinfo("AuthenticAMD", 25, 1, base)),
        driver.host_cpu_tag(_cpuinfo("GenuineIntel", 6, 106, base + " avx512f")),
    }
    assert len(tags) == 4
    # the flags' order and later processors' blocks do not matter
    shuffled = _cpuinfo("AuthenticAMD", 25, 17, "avx512bw avx512f " + base)
    assert driver.host_cpu_tag(shuffled) == driver.host_cpu_tag(zen4)
    assert driver.host_cpu_tag(zen4).split("-")[1:4] == ["AuthenticAMD", "25", "17"]
    assert all(c.isalnum() or c in "._-" for c in driver.host_cpu_tag())
    if not jax.config.jax_compilation_cache_dir:  # this process has no cache yet
        min_time = jax.config.jax_persistent_cache_min_compile_time_secs
        try:
            path = driver.enable_compile_cache(tmp_path / "c")
            assert path == tmp_path / "c" / driver.host_cpu_tag() and path.is_dir()
            assert jax.config.jax_compilation_cache_dir == str(path)
        finally:
            jax.config.update("jax_compilation_cache_dir", None)
            jax.config.update("jax_persistent_cache_min_compile_time_secs", min_time)


def test_gamma_variates_have_the_gamma_law():
    shapes = jnp.asarray([0.55, 1.0, 2.5, 101.0], jnp.float32)
    keys = jax.random.split(jax.random.key(4), 3000)
    x = np.asarray(jax.vmap(cond.gamma_variates, (0, None))(keys, shapes))
    for j, a in enumerate(np.asarray(shapes)):
        assert st.kstest(x[:, j], st.gamma(a).cdf).pvalue > 1e-3
        # the mean within 5 standard errors
        assert abs(x[:, j].mean() - a) < 5 * np.sqrt(a / x.shape[0])


def test_gamma_variates_end_on_bad_shapes_and_on_words_that_never_accept(
    monkeypatch,
):
    """The rejection loop always ends: a shape that is not finite and positive
    gives NaN at once, and words that reject in every round give NaN after
    ``GAMMA_MAX_ROUNDS`` (a hang before the cap) while the other shapes keep
    their draws."""
    key = jax.random.key(0)
    shapes = jnp.asarray([np.nan, -1.0, 0.0, np.inf, 2.0], jnp.float32)
    x = np.asarray(jax.jit(cond.gamma_variates)(key, shapes))
    assert np.isnan(x[:4]).all() and np.isfinite(x[4]) and x[4] > 0

    real_words = cond.random_words
    rounds = []

    def count(_word) -> np.ndarray:  # True after 200 rounds: a loop without the
        rounds.append(1)  # cap then gets real words and ends (the test fails, no hang)
        return np.asarray(len(rounds) > 200)

    def stuck(key, num, dtype):
        words = real_words(key, num, dtype)
        # the round's word as the argument keeps the call inside the loop
        give_up = jax.pure_callback(
            count, jax.ShapeDtypeStruct((), jnp.bool_), words[0]
        )
        r = num // 3  # the z words all 0: z at its lowest (-5.4), so that
        # 1 + c z < 0 (v <= 0, rejected) for shapes below about 3
        z_words = jnp.where(give_up, words[:r], jnp.zeros_like(words[:r]))
        return jnp.concatenate([z_words, words[r:]])

    monkeypatch.setattr(cond, "random_words", stuck)
    out = np.asarray(cond.gamma_variates(key, jnp.asarray([1.5, 2.0], jnp.float32)))
    assert np.isnan(out).all()
    assert len(rounds) == cond.GAMMA_MAX_ROUNDS


def test_progress_shows_compiling_then_the_sweeps(chains, data, capsys):
    driver.sample_sites(
        jax.random.key(5),
        *data,
        CONFIG,
        default_prior(1),
        num_warmup=20,
        num_samples=31,
        num_chains=3,
        thinning=3,
        progress=True,
    )
    err = capsys.readouterr().err
    assert "compiling ... done in" in err
    assert "sampling, 3 chains" in err and "51/51" in err


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_words_give_jax_randoms_own_uniforms_and_normals(dtype):
    # One PRNG call feeds the sweep's normals and uniforms; the transform must be
    # jax.random's own, so the same key gives the same variates bit for bit.
    with jax.enable_x64(dtype == "float64"):
        dt = jnp.dtype(dtype)
        key = jax.random.key(11)
        words = cond.random_words(key, 4096, dt)
        assert words.dtype == jnp.dtype(f"uint{dt.itemsize * 8}")
        np.testing.assert_array_equal(
            cond.uniform_from_words(words, dt), jax.random.uniform(key, (4096,), dt)
        )
        np.testing.assert_array_equal(
            cond.normal_from_words(words, dt), jax.random.normal(key, (4096,), dt)
        )


def test_host_start_has_the_kernels_starting_law():
    prior = default_prior(2)._replace(
        a_gamma=np.array([0.5, -1.0, 2.0]),
        C_gamma=np.array([[2.0, 0.3, 0.0], [0.3, 1.0, -0.4], [0.0, -0.4, 0.5]]),
    )
    config = driver.GibbsConfig(3)
    state = driver.start(jax.random.key(3), config, prior, 2000, 17)
    gamma = np.asarray(state.z.gamma)  # [chains, m, d]
    assert gamma.shape == (2000, 3, 3) and gamma.dtype == np.float32
    flat = gamma.reshape(-1, 3)  # 6000 independent N(a_gamma, C_gamma) draws
    se = np.sqrt(np.diag(prior.C_gamma) / flat.shape[0])
    assert (np.abs(flat.mean(0) - prior.a_gamma) < 5 * se).all()
    np.testing.assert_allclose(np.cov(flat.T), prior.C_gamma, atol=0.12)
    # the hyperparameters at their prior guesses (simulate.initial_position)
    np.testing.assert_allclose(state.z.prec_gamma[5], np.linalg.inv(prior.C_gamma),
                               rtol=1e-5)  # fmt: skip
    np.testing.assert_allclose(state.z.mu_gamma[0], prior.a_gamma)
    assert float(state.z.prec[0]) == pytest.approx(1 / prior.S)
    assert float(state.z.prec_beta[0]) == pytest.approx(1 / prior.C_b)
    assert state.num_warmup.tolist() == [17] * 2000 and state.i.tolist() == [0] * 2000
    # one key per chain, all different; the same key gives the same start
    keys = np.asarray(jax.random.key_data(state.rng_key))
    assert len({tuple(k) for k in keys}) == 2000
    again = driver.start(jax.random.key(3), config, prior, 2000, 17)
    np.testing.assert_array_equal(again.z.gamma, state.z.gamma)
    other = driver.start(jax.random.key(4), config, prior, 2000, 17)
    assert not np.allclose(other.z.gamma, state.z.gamma)
    # raw uint32 keys in, raw keys out
    raw = driver.start(jax.random.PRNGKey(3), config, prior, 2, 17)
    assert raw.rng_key.dtype == jnp.uint32 and raw.rng_key.shape == (2, 2)


def test_sampler_programs_use_the_cpu_compiler_options():
    if jax.default_backend() == "cpu":
        assert driver._compiler_options() == driver.CPU_COMPILER_OPTIONS
    else:
        assert driver._compiler_options() == {}


def test_an_unknown_compiler_option_fails_loudly(monkeypatch):
    """No silent fallback: the pinned jaxlib knows CPU_COMPILER_OPTIONS (every
    sampler test compiles with them), and an unknown option is an error."""
    double = driver._jit(lambda config, shards, x: config * shards * x)
    np.testing.assert_array_equal(double(2, 1, jnp.arange(3.0)), [0.0, 2.0, 4.0])
    if jax.default_backend() != "cpu":
        pytest.skip("the options apply on CPU only")
    options = {**driver.CPU_COMPILER_OPTIONS, "xla_no_such_option_for_jaxseq": 1}
    monkeypatch.setattr(driver, "CPU_COMPILER_OPTIONS", options)
    double = driver._jit(lambda config, shards, x: config * shards * x)
    with pytest.raises(jax.errors.JaxRuntimeError):
        double(2, 1, jnp.arange(3.0))
