#!/usr/bin/env bash
# The main job on its embedded default: no download, no arguments needed.
source "$(dirname "$0")/_venv.sh" ""
exec python -m jaxseq demo "$@"
