#!/usr/bin/env bash
# The test suite. Optional peers (torch, keras, equinox) are used when installed
# (`pip install -e .[peers]`), skipped with a reason otherwise.
source "$(dirname "$0")/_venv.sh" "test"
exec python -m pytest "$@"
