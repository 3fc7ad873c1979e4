#!/usr/bin/env bash
# The test suite. Optional peers (torch, keras, equinox) are used when installed
# (`pip install -e .[peers]`), skipped with a reason otherwise.
# Tests run in one worker process per CPU (pytest-xdist, `-n auto`); each test is
# independent of the others and of their order. JAXSEQ_TEST_WORKERS=N sets the
# number of workers, JAXSEQ_TEST_WORKERS=0 runs everything in this one process.
#
# Compiled programs are shared through JAX's persistent compilation cache in a
# folder made for this run and removed after it (set JAX_COMPILATION_CACHE_DIR
# yourself to keep one, or to "" to compile everything afresh). Many tests build
# the same program from fresh closures and the xdist workers and the CLI
# subprocesses compile the same programs; the cache saves about 12% of the suite's
# CPU time. A size limit turns on JAX's file lock, so that concurrent workers never
# read a half-written entry.
source "$(dirname "$0")/_venv.sh" "test"
if [ -z "${JAX_COMPILATION_CACHE_DIR+set}" ]; then
    cache="$(mktemp -d "${TMPDIR:-/tmp}/jaxseq-test-cache.XXXXXX")"
    trap 'rm -rf "$cache"' EXIT
    export JAX_COMPILATION_CACHE_DIR="$cache"
    export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="${JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS:-0.1}"
    export JAX_COMPILATION_CACHE_MAX_SIZE="${JAX_COMPILATION_CACHE_MAX_SIZE:-4000000000}"
fi
# The suite compiles with LLVM's optimisation level 0 (XLA's HLO passes, and so
# the programs' semantics and fusion, are unchanged; only the machine code is less
# optimised): most tests are dominated by compiling small programs, and this
# halves their time (tests/cells/test_cells.py 92 s -> 43 s, tests/train/test_fit.py
# 74 s -> 29 s on one AMD EPYC core) while the few long-running samplers run about
# as fast. Benchmarks and users compile at XLA's default. JAXSEQ_TEST_XLA_OPT=default
# runs the suite at the default level instead (it passes there too).
# The suite also uses XLA:CPU's older loop-fusion emitters
# (--xla_cpu_use_fusion_emitters=false; same HLO, other machine code): they compile
# in about half the CPU time (tests/cells/test_cells.py 50 -> 26 CPU s at level 0,
# docs/bayes.md's examples 37.6 -> 32.4 CPU s; one AMD EPYC Zen 4 core).
# JAXSEQ_TEST_XLA_OPT=default drops both flags.
if [ "${JAXSEQ_TEST_XLA_OPT:-0}" != "default" ]; then
    export XLA_FLAGS="${XLA_FLAGS:+$XLA_FLAGS }--xla_backend_optimization_level=${JAXSEQ_TEST_XLA_OPT:-0} --xla_cpu_use_fusion_emitters=false"
fi
workers="${JAXSEQ_TEST_WORKERS:-auto}"
status=0
if [ "$workers" = "0" ]; then
    python -m pytest "$@" || status=$?
else
    # worksteal: an idle worker takes queued tests from a busy one, so a slow
    # test near the end does not leave the other core waiting
    python -m pytest -n "$workers" --dist worksteal "$@" || status=$?
fi
exit "$status"
