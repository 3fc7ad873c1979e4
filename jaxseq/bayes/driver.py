r"""Run vectorised chains of the blocked Gibbs sampler as one compiled program.

:func:`run_chains` is what :func:`jaxseq.bayes.fit` uses for ``sampler="gibbs"``
with vectorised chains. It drives :class:`~jaxseq.bayes.BlockedGibbs`'s sweep
(the same kernel and adaptation that run under :class:`numpyro.infer.MCMC`) with a
host loop over *chunks* of at most :data:`CHUNK` recorded draws:

* one jitted program (:func:`_advance`) advances all chains (``vmap``) by a
  *traced* number of sweeps and records them into a fixed ``[CHUNK]`` buffer, so
  warm-up, sampling and every run length, thinning and warm-up length share one
  compiled program (NumPyro's ``MCMC`` compiles a new loop per ``MCMC`` object and
  per run length, plus one small program per eager operation of its set-up);
* with several local devices the chains are split over them
  (:func:`chain_shards`; ``shard_map``, each device running its chains
  vectorised), so on a CPU with one device per core
  (:func:`cpu_devices_per_core`, as the ``jaxseq bayes`` CLI sets up) they
  sample on every core;
* the chains' starting points and keys are made on the host (:func:`start`,
  NumPy) and put straight where they run, so nothing else is compiled before
  the first sweep;
* the program is cached by the static configuration (:class:`GibbsConfig`) and
  by the shapes of the data, so a second fit of the same shapes in the same
  process compiles nothing, and with the persistent compilation cache
  (:func:`enable_compile_cache`, on in the ``jaxseq bayes`` CLI) neither does a
  second process.

The prior is passed as traced arrays, so another prior does not recompile either.

**Compile time.** A cold default fit (``m = 4``, ``n = 200``, 4 chains) spends
most of its time compiling :func:`_advance`: about 1 s of Python tracing and
lowering, then XLA's code generation for ~400 small kernels (the sweep is many
small operations on ``[n, m + 1]`` and ``[d, d]`` arrays inside nested loops;
XLA's own HLO passes take under 1 s). On CPU the program is compiled with
:data:`CPU_COMPILER_OPTIONS`; docs/bayes.md has the measured breakdown.

Every sweep is the kernel's own (:meth:`GibbsSweep._sample_one`, which
:class:`~jaxseq.bayes.BlockedGibbs` extends); only the PRNG keys differ from a
NumPyro run with the same seed.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike

from .._typing import Key
from . import _programs, adaptation, gibbs, moves
from ._sweep import GibbsKernelState, GibbsSweep
from .dimension import HiddenUnits
from .models import Prior

__all__ = [
    "CHUNK",
    "CPU_COMPILER_OPTIONS",
    "Chains",
    "GibbsConfig",
    "chain_mesh",
    "chain_shards",
    "compile_cache_dir",
    "cpu_devices_per_core",
    "enable_compile_cache",
    "host_cpu_tag",
    "host_generator",
    "run_chains",
    "sample_sites",
    "start",
]

#: Draws recorded per call of the compiled program (the host loop's step).
CHUNK = 250
#: XLA options of the sampler's program on CPU: XLA's classic (LLVM IR) emitters
#: for the fused kernels instead of the MLIR fusion emitters. Code generation
#: for the sweep's ~400 small kernels dominates its compile time; with the
#: classic emitters XLA took about half the CPU time (7.5-8.1 -> 3.8-4.1 s for
#: the default ``m = 4``, ``n = 200`` program on the AMD EPYC of docs/bayes.md),
#: and the sampling's time stayed within the noise (1.44-1.45 vs 1.45-1.53 s for
#: 2,000 sweeps of 4 chains). Applied per program (``jax.jit(...,
#: compiler_options=...)``), so other programs of the process are untouched;
#: the options are part of the persistent cache's key.
CPU_COMPILER_OPTIONS = {"xla_cpu_use_fusion_emitters": False}
#: Environment variable naming the persistent compilation cache folder; ``"0"``,
#: ``"off"`` or ``""`` turn the cache off (:func:`enable_compile_cache`).
CACHE_ENV = "JAXSEQ_COMPILE_CACHE"
#: Name of the mesh axis the chains are split over (:func:`chain_mesh`).
CHAIN_AXIS = "chains"


class GibbsConfig(NamedTuple):
    """The static part of a Gibbs run (a new value compiles a new program).

    Attributes:
        hidden: ``m`` (the number of slots ``m_max`` when ``dimension`` is set).
        bias: sample an output bias. proposal: the moves
            (:class:`jaxseq.bayes.moves.Moves`). target_accept: the random
            walk's target acceptance during warm-up. dimension: sample ``m`` too
            (:class:`~jaxseq.bayes.dimension.HiddenUnits`, validated, with
            ``max == hidden``); ``None``: ``m`` fixed.
    """

    hidden: int
    bias: bool = True
    proposal: moves.Moves | str = moves.DEFAULT
    target_accept: float = 0.3
    dimension: HiddenUnits | None = None

    def kernel(self, prior: Prior) -> GibbsSweep:
        """The sweep (:class:`~jaxseq.bayes.BlockedGibbs`' own, without NumPyro)."""
        return GibbsSweep(
            self.hidden,
            prior=prior,
            bias=self.bias,
            proposal=self.proposal,
            target_accept=self.target_accept,
        )


class Chains(NamedTuple):
    """Draws of :func:`run_chains`, each ``[chains, draws, ...]``.

    Attributes:
        position: :class:`~jaxseq.bayes.gibbs.NetParams` of the kept draws
            (NumPy arrays; inactive units zero with variable ``m``).
        info: :class:`~jaxseq.bayes.gibbs.GibbsInfo` of the kept sweeps (NumPy).
        state: the kernel state after the last sweep (``[chains, ...]``); with
            variable ``m`` the pair ``(kernel state, m)``.
        m: ``[chains, draws]`` numbers of active units (variable ``m``), else
            ``None``.
    """

    position: gibbs.NetParams
    info: gibbs.GibbsInfo
    state: Any
    m: np.ndarray | None = None


def _prior_arrays(prior: Prior, dtype) -> Prior:
    # made on the host and put (jnp.asarray of a float64 or 0-d array compiles)
    return Prior(*(jax.device_put(np.asarray(v, dtype)) for v in prior))


def _compiler_options() -> dict[str, Any]:
    """XLA options of the sweep program: on CPU, :data:`CPU_COMPILER_OPTIONS`."""
    return dict(CPU_COMPILER_OPTIONS) if jax.default_backend() == "cpu" else {}


def _jit(fun):
    """``jax.jit(fun, static_argnames=("config", "shards"))`` with
    :func:`_compiler_options`, built at the first call (when the backend is known)
    and kept; ``.jit()`` returns the jitted function (for ``.trace``/``.lower``),
    ``.named(name)`` a new one whose compiled module is called ``name``.

    The options are passed as they are: every jaxlib of the range pinned in
    ``pyproject.toml`` (``jax>=0.10.2,<0.11``) knows them, and an unknown option
    would fail the first compile loudly (``tests/bayes`` compiles this program
    with them) rather than silently compile a slower program.
    """
    jitted = []

    def get():
        if not jitted:
            jitted.append(
                jax.jit(
                    fun,
                    static_argnames=("config", "shards"),
                    compiler_options=_compiler_options(),
                )
            )
        return jitted[0]

    @functools.wraps(fun)
    def call(*args, **kwargs):
        return get()(*args, **kwargs)

    def named(name: str):
        """The jitted function under another name (the compiled module's name)."""

        @functools.wraps(fun)
        def program(*args, **kwargs):
            return fun(*args, **kwargs)

        program.__name__ = program.__qualname__ = name
        return jax.jit(
            program,
            static_argnames=("config", "shards"),
            compiler_options=_compiler_options(),
        )

    call.jit, call.named = get, named
    return call


def _key_data(key: Key) -> tuple[np.ndarray, Any]:
    """``(key data as uint32 NumPy, PRNG implementation)`` of a typed key or of a
    raw ``uint32`` key (then the default implementation)."""
    if jnp.issubdtype(jnp.asarray(key).dtype, jax.dtypes.prng_key):
        return np.asarray(jax.random.key_data(key)), jax.random.key_impl(key)
    return np.asarray(key, np.uint32), None


def host_generator(key: Key) -> np.random.Generator:
    """NumPy's generator (``SeedSequence``/``PCG64``) seeded with ``key``'s data
    (typed or raw ``uint32`` key): the same key gives the same stream, and
    drawing from it compiles no program (an eager ``jax.random`` call compiles
    one, 0.5-0.9 CPU s for a ``normal``)."""
    data, _ = _key_data(key)
    return np.random.default_rng([int(v) for v in data.ravel()])


def start(
    key: Key,
    config: GibbsConfig,
    prior: Prior,
    num_chains: int,
    num_warmup: int,
    sharding: jax.sharding.Sharding | None = None,
) -> Any:
    """Starting states ``[chains, ...]`` and one PRNG key per chain, made on the
    host (NumPy): no program to compile.

    The law of :meth:`BlockedGibbs._init_one` (:func:`~jaxseq.bayes.simulate.
    initial_position`): ``gamma_j ~ N(a_gamma, C_gamma)`` independently, the
    hyperparameters at their prior guesses, ``beta = mu_beta``, ``b0 = a_0``;
    with variable ``m`` every chain starts with all ``m_max`` units active. The
    chains' keys and the normals come from NumPy's ``SeedSequence``/``PCG64``
    seeded with ``key``'s data (the same key gives the same start), instead of
    a jitted start (``jax.random.split``, ``normal``, the prior's factors; its
    compilation took 1.3 s of CPU of a cold fit). The starting ``info`` is NaN:
    it is never recorded (every record follows a sweep).

    Args:
        key: PRNG key (typed, or a raw ``uint32`` key). config: the run's
            :class:`GibbsConfig`. prior: hyperparameters (host values).
        num_chains: chains. num_warmup: warm-up sweeps (kept in the state).
        sharding: where to place the arrays (e.g. split over devices along the
            chains, :func:`chain_mesh`); ``None``: the default device. They go
            from the host straight there, without a copy program.

    Returns:
        A :class:`~jaxseq.bayes.GibbsKernelState` with a leading ``[chains]``
        axis; with variable ``m`` the pair ``(state, m)``, ``m`` ``[chains]``.
    """
    data, impl = _key_data(key)
    rng = host_generator(key)
    chain_keys = rng.integers(0, 2**32, (num_chains, *data.shape), dtype=np.uint32)
    # Contiguous host arrays in the run's dtype, put with device_put: jnp.asarray
    # of a broadcast (zero-stride), 0-d or float64 array compiles a small program.
    put = lambda a: jax.device_put(a, sharding)
    keys = put(chain_keys)
    if impl is not None:  # typed keys in, typed keys out (raw keys stay raw)
        keys = jax.random.wrap_key_data(keys, impl=impl)
    dtype = jnp.result_type(float)
    m, chains = config.hidden, num_chains
    a_gamma = np.asarray(prior.a_gamma, np.float64)
    C = np.asarray(prior.C_gamma, np.float64)
    d = a_gamma.shape[0]
    eps = rng.standard_normal((chains, m, d))
    gamma = a_gamma + eps @ np.linalg.cholesky(C).T
    inv = np.linalg.inv(C)
    full = lambda shape, v: np.array(
        np.broadcast_to(np.asarray(v, dtype), (chains, *shape))
    )
    position = gibbs.NetParams(
        beta=full((m,), prior.a_beta),
        b0=full((), prior.a_0),
        gamma=gamma.astype(dtype),
        mu_beta=full((), prior.a_beta),
        prec_beta=full((), 1.0 / prior.C_b),
        mu_gamma=full((d,), a_gamma),
        prec_gamma=full((d, d), 0.5 * (inv + inv.T)),
        prec=full((), 1.0 / prior.S),
    )
    batch = lambda tree: jax.tree.map(lambda a: full(a.shape, a), tree)
    proposal = batch(adaptation.init_proposal(m, d, dtype))
    adapt_state = batch(adaptation.init_adaptation(m, d, dtype))
    nan_m, nan = full((m,), np.nan), full((), np.nan)
    state = GibbsKernelState(
        i=np.zeros((chains,), np.int32),
        z=position,
        proposal=proposal,
        adapt_state=adapt_state,
        info=gibbs.GibbsInfo(nan_m, nan_m, nan_m, nan_m, nan, nan, nan, nan),
        num_warmup=np.full((chains,), num_warmup, np.int32),
        rng_key=keys,
    )
    if config.dimension is not None:
        state = state._replace(info=state.info._replace(accept_dim=nan))
        state = (state, np.full((chains,), config.hidden, np.int32))
    return jax.tree.map(put, state)


def chain_shards(num_chains: int, devices: int | None = None) -> int:
    """Devices to split ``num_chains`` chains over: the largest divisor of
    ``num_chains`` that is at most ``devices`` (default: the default backend's
    local devices), so every device runs the same number of chains."""
    devices = jax.local_device_count() if devices is None else devices
    return max(k for k in range(1, min(devices, num_chains) + 1) if num_chains % k == 0)


def chain_mesh(shards: int) -> jax.sharding.Mesh:
    """A one-axis mesh (:data:`CHAIN_AXIS`) of the first ``shards`` local devices."""
    return jax.sharding.Mesh(np.asarray(jax.local_devices()[:shards]), (CHAIN_AXIS,))


def _advance(
    config: GibbsConfig, shards: int, state, x, y, prior: Prior, records, thin
):
    """``records * thin`` sweeps of every chain, every ``thin``-th recorded.

    ``records <= CHUNK`` and ``thin`` are traced. Returns ``(state, (position,
    info))`` with the buffers ``[chains, CHUNK, ...]`` filled up to ``records``.
    With ``shards > 1`` the chains are split over the first ``shards`` devices
    (:func:`chain_mesh`), each running its own chains vectorised.
    """
    if shards == 1:
        return _advance_local(config, state, x, y, prior, records, thin)
    chains = jax.sharding.PartitionSpec(CHAIN_AXIS)
    local = jax.shard_map(
        functools.partial(_advance_local, config),
        mesh=chain_mesh(shards),
        in_specs=(chains,) + (jax.sharding.PartitionSpec(),) * 5,
        out_specs=chains,
        check_vma=False,  # the sweep's code is per chain: nothing is shared
    )
    return local(state, x, y, prior, records, thin)


def _advance_local(config: GibbsConfig, state, x, y, prior: Prior, records, thin):
    """:func:`_advance` on one device: every chain of ``state`` vectorised."""
    kernel = config.kernel(prior)
    if config.dimension is None:
        sweep = lambda _, s: kernel._sample_one(s, x, y)
    else:
        sweep = lambda _, s: kernel._sweep(s[0], x, y, s[1], config.dimension)
    kept = _kept(config)

    def one_chain(state):
        buffer = jax.tree.map(
            lambda a: jnp.zeros((CHUNK, *a.shape), a.dtype), kept(state)
        )

        def record(r, carry):
            state, buffer = carry
            state = jax.lax.fori_loop(0, thin, sweep, state)
            buffer = jax.tree.map(lambda b, v: b.at[r].set(v), buffer, kept(state))
            return state, buffer

        return jax.lax.fori_loop(0, records, record, (state, buffer))

    return jax.vmap(one_chain)(state)


def _kept(config: GibbsConfig):
    """What a record keeps of a chain's state: ``(position, info)``, and ``m``
    with variable ``m``."""
    if config.dimension is None:
        return lambda s: (s.z, s.info)
    return lambda s: (s[0].z, s[0].info, s[1])


_advance = _jit(_advance)
#: Programs loaded from or saved to the program cache in this process, by key.
_loaded: dict[str, Any] = {}


def _program(config: GibbsConfig, shards: int, args: tuple):
    """The compiled :func:`_advance` for ``config``, ``shards`` and arguments
    like ``args = (state, x, y, prior, records, thin)``, called with such
    arguments.

    With JAX's persistent compilation cache on (:func:`enable_compile_cache`),
    the whole compiled program is also kept in :mod:`jaxseq.bayes._programs`,
    so that a later process neither traces, lowers nor compiles it (a damaged
    file is reported and compiled again); otherwise it is the jitted
    :func:`_advance`, cached in the process by its static arguments and shapes.
    """
    if _programs.folder() is None:
        return functools.partial(_advance, config, shards)
    options = _compiler_options()
    key = _programs.program_key(
        "gibbs._advance", (config, shards, CHUNK), args, options, host_cpu_tag()
    )
    if key not in _loaded:
        state = args[0]
        in_tree = jax.tree.structure((args, {}))
        out_tree = jax.tree.structure((state, _kept(config)(state)))
        program = _programs.load(key, in_tree, out_tree)
        if program is None:
            name, static = f"gibbs_sweeps_{key[:16]}", (config, shards)
            program = _programs.compile_fresh(_advance.named, name, *static, *args)
            _programs.save(key, program)
        _loaded[key] = program
    return _loaded[key]


def run_chains(
    key: Key,
    x: ArrayLike,
    y: ArrayLike,
    config: GibbsConfig,
    prior: Prior,
    *,
    num_warmup: int,
    num_samples: int,
    num_chains: int,
    thinning: int = 1,
    progress: Any = None,
    shards: int | None = None,
) -> Chains:
    """Run ``num_chains`` vectorised chains of :class:`~jaxseq.bayes.BlockedGibbs`.

    Arguments are used as given (validated and standardised by
    :func:`jaxseq.bayes.fit`).

    Args:
        key: PRNG key (split into one key per chain).
        x: ``[n, p]`` inputs. y: ``[n]`` responses.
        config: :class:`GibbsConfig`. prior: hyperparameters (traced).
        num_warmup: adaptation sweeps (not kept). num_samples: sampling sweeps,
            every ``thinning``-th kept (``num_samples // thinning`` draws).
        num_chains: chains (vectorised with ``vmap``).
        shards: devices to split the chains over (each runs ``num_chains //
            shards`` chains vectorised; must divide ``num_chains``); ``None``:
            :func:`chain_shards`, as many local devices as divide the chains.
        progress: ``None`` or a :class:`jaxseq.bayes._progress.Progress` open
            over ``num_warmup + num_samples`` steps; its compiling stage ends
            when the programs are compiled.

    Returns:
        :class:`Chains`.
    """
    shards = chain_shards(num_chains) if shards is None else shards
    devices = jax.local_device_count()
    if not (1 <= shards <= devices and num_chains % shards == 0):
        raise ValueError(
            f"shards: expected a divisor of num_chains = {num_chains} between 1 "
            f"and the {devices} local devices, got {shards!r}."
        )
    dtype = jnp.result_type(float)
    x, y = (jax.device_put(np.asarray(a, dtype)) for a in (x, y))
    split = None
    if shards > 1:  # each chain's state where the program runs it
        split = jax.sharding.NamedSharding(
            chain_mesh(shards), jax.sharding.PartitionSpec(CHAIN_AXIS)
        )
    state = start(key, config, prior, num_chains, num_warmup, split)
    prior = _prior_arrays(prior, dtype)
    zero, one = jax.device_put(np.int32(0)), jax.device_put(np.int32(1))
    program = _program(config, shards, (state, x, y, prior, zero, one))
    advance = lambda state, records, thin: program(state, x, y, prior, records, thin)
    # A call with no sweep compiles the program (and returns at once), so that the
    # compiling stage ends before the first sweep.
    state, _ = advance(state, zero, one)
    if progress is not None:
        jax.block_until_ready(state)
        progress.compiled()

    def chunks(total: int):
        while total > 0:
            step = min(total, CHUNK)
            yield step
            total -= step

    for step in chunks(num_warmup):
        state, _ = advance(state, np.int32(step), one)
        if progress is not None:
            jax.block_until_ready(state)
            progress.advance(step)
    kept, pieces = num_samples // thinning, []
    thin = np.int32(thinning)
    for step in chunks(kept):
        state, records = advance(state, np.int32(step), thin)
        # Cut on the host: slicing on the device would compile per length.
        cut = lambda a, s=step: np.asarray(a)[:, :s]
        pieces.append(jax.tree.map(cut, records))
        if progress is not None:
            jax.block_until_ready(state)
            progress.advance(step * thinning)
    if progress is not None and num_samples > kept * thinning:
        progress.advance(num_samples - kept * thinning)  # the bar ends full
    records = jax.tree.map(lambda *a: np.concatenate(a, axis=1), *pieces)
    return Chains(*records[:2], state, *records[2:])


def compile_cache_dir() -> Path | None:
    """The persistent compilation cache folder: ``$JAXSEQ_COMPILE_CACHE`` if set
    (``None`` when it is ``"0"``, ``"off"``, ``"false"`` or empty), else
    ``$XDG_CACHE_HOME/jaxseq/jax`` (``~/.cache/jaxseq/jax``)."""
    value = os.environ.get(CACHE_ENV)
    if value is not None:
        if value.strip().lower() in ("", "0", "off", "false", "no"):
            return None
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "jaxseq" / "jax"


#: The ``XLA_FLAGS`` flag that sets the number of CPU devices by hand.
_XLA_DEVICE_FLAG = "--xla_force_host_platform_device_count"


def cpu_devices_per_core() -> int | None:
    """Give JAX's CPU backend one device per core this process may run on
    (``jax_num_cpu_devices``), so that :func:`run_chains` splits the chains over
    the cores (:func:`chain_shards`); the ``jaxseq bayes fit`` command calls it.

    The number of devices can only be set before JAX's backend starts (the first
    array or compiled program); nothing changes, and ``None`` is returned, when
    it has already started (the process keeps the devices it started with), when
    the number was already chosen (``JAX_NUM_CPU_DEVICES`` /
    ``jax_num_cpu_devices``, or ``--xla_force_host_platform_device_count`` in
    ``XLA_FLAGS``), or when there is one core. Returns the number set.
    """
    try:
        cores = len(os.sched_getaffinity(0))  # the cores this process may use
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    chosen = jax.config.jax_num_cpu_devices >= 0
    if cores < 2 or chosen or _XLA_DEVICE_FLAG in os.environ.get("XLA_FLAGS", ""):
        return None
    try:
        jax.config.update("jax_num_cpu_devices", cores)
    except RuntimeError:  # JAX's check: the backend has already started
        return None
    return cores


def host_cpu_tag(cpuinfo: str | None = None) -> str:
    """A folder name for the host CPU: architecture, vendor, family, model and a
    hash of the instruction-set flags, from ``/proc/cpuinfo`` (``cpuinfo``: its
    text, for tests); where that file is missing, the architecture and
    :func:`platform.processor`, hashed.

    E.g. ``"x86_64-AuthenticAMD-25-17-fb86c92f4654"`` (a Zen 4 EPYC). Compiled
    CPU programs use the host's instruction set (AVX-512 on one machine, AVX2 on
    another), so :func:`enable_compile_cache` keeps one folder per tag.
    """
    import hashlib
    import platform

    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            cpuinfo = ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        if not line.strip():
            break  # the first processor's block
        name, _, value = line.partition(":")
        fields.setdefault(name.strip(), value.strip())
    machine = platform.machine() or "cpu"
    if "flags" in fields or "Features" in fields:  # x86 / ARM Linux
        flags = " ".join(
            sorted(fields.get("flags", fields.get("Features", "")).split())
        )
        parts = [
            fields.get("vendor_id", fields.get("CPU implementer", "")),
            fields.get("cpu family", fields.get("CPU architecture", "")),
            fields.get("model", fields.get("CPU part", "")),
        ]
    else:
        flags, parts = platform.processor(), []
    digest = hashlib.sha256(flags.encode()).hexdigest()[:12]
    safe = lambda t: "".join(c if c.isalnum() or c in "._" else "_" for c in t)
    return "-".join(safe(t) for t in [machine, *parts, digest] if t)


def enable_compile_cache(path: str | Path | None = None) -> Path | None:
    """Turn on JAX's persistent compilation cache (compiled programs on disk), so
    that a later process skips compiling the same program.

    The entries go to the subfolder :func:`host_cpu_tag` of ``path`` (default
    :func:`compile_cache_dir`), so that a folder shared by machines with other
    CPUs (a home directory on a cluster) never hands a program compiled for one
    instruction set to another. JAX's own key (jax 0.10.2) covers the program,
    the jax/jaxlib versions, the compiler options and ``XLA_FLAGS``, and the
    devices' topology (whose fingerprint changed with the device count and with
    ``--xla_cpu_max_isa``); but the device kind and platform version it hashes
    are ``"cpu"`` on every CPU, so the folder states the CPU as well.

    Nothing changes, and ``None`` is returned, when the cache is switched off
    (``JAXSEQ_COMPILE_CACHE=0``) or when the process already set
    ``jax_compilation_cache_dir`` (then that folder is returned, as it is).
    Programs that compiled in under 0.5 s are not stored. Returns the folder of
    the entries.
    """
    current = jax.config.jax_compilation_cache_dir
    if current:
        return Path(current)
    path = compile_cache_dir() if path is None else Path(path).expanduser()
    if path is None:
        return None
    path = path / host_cpu_tag()
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    return path


def sample_sites(
    key: Key,
    x: ArrayLike,
    y: ArrayLike,
    config: GibbsConfig,
    prior: Prior,
    *,
    num_warmup: int,
    num_samples: int,
    num_chains: int,
    thinning: int = 1,
    progress: bool = False,
    shards: int | None = None,
) -> tuple[dict[str, Any], gibbs.GibbsInfo]:
    """:func:`run_chains` (``shards`` as there) with the model's sample sites as a
    dict (``b0`` only with a bias, ``m`` only with variable ``m``; ``[chains,
    draws, ...]``) and, with
    ``progress``, a "compiling" stage and a bar of the sweeps per chain on stderr
    (:mod:`jaxseq.bayes._progress`).

    Returns:
        ``(sites, info)``.
    """
    run = functools.partial(
        run_chains,
        key,
        x,
        y,
        config,
        prior,
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        thinning=thinning,
        shards=shards,
    )
    if progress:
        from . import _progress

        bar = _progress.chains_bar(num_warmup, num_samples, num_chains)
        with bar:
            out = run(progress=bar)
            jax.block_until_ready(out)
    else:
        out = run()
    sites = out.position._asdict()
    if not config.bias:
        sites.pop("b0")
    if out.m is not None:
        sites["m"] = out.m
    return jax.block_until_ready(sites), out.info
