# Sourced by scripts/demo.sh and scripts/test.sh: make (once) and activate .venv,
# and (re)install jaxseq with the extras named in $1 whenever pyproject.toml changes.
# Usage: source scripts/_venv.sh "test"
set -euo pipefail
_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_extras="${1:-}"
_py="${PYTHON:-python3}"
if [ ! -x "$_root/.venv/bin/python" ]; then
    "$_py" -c 'import sys; assert sys.version_info >= (3, 11), "jaxseq needs Python >= 3.11, got " + sys.version' 
    echo "jaxseq: creating $_root/.venv (first run only)" >&2
    "$_py" -m venv "$_root/.venv"
    "$_root/.venv/bin/python" -m pip install -q --upgrade pip
fi
# shellcheck disable=SC1091
source "$_root/.venv/bin/activate"
_hash="$(cat "$_root/pyproject.toml" | sha256sum | cut -c1-16)"
_stamp="$_root/.venv/.jaxseq-installed-${_extras:-base}-$_hash"
if [ ! -f "$_stamp" ]; then
    echo "jaxseq: installing jaxseq${_extras:+[$_extras]} into .venv" >&2
    python -m pip install -q --disable-pip-version-check -e "$_root${_extras:+[$_extras]}"
    touch "$_stamp"
fi
cd "$_root"
