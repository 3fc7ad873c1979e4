#!/usr/bin/env bash
# The test suite. Optional peers (torch, keras, equinox) are used when installed
# (`pip install -e .[peers]`), skipped with a reason otherwise.
# Tests run in one worker process per CPU (pytest-xdist, `-n auto`); each test is
# independent of the others and of their order. JAXSEQ_TEST_WORKERS=N sets the
# number of workers, JAXSEQ_TEST_WORKERS=0 runs everything in this one process.
source "$(dirname "$0")/_venv.sh" "test"
workers="${JAXSEQ_TEST_WORKERS:-auto}"
if [ "$workers" = "0" ]; then
    exec python -m pytest "$@"
fi
exec python -m pytest -n "$workers" "$@"
