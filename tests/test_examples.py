"""Every script in examples/ runs end to end (``--small``: a few seconds each).

Each runs in a fresh interpreter, as a user would run it, and asserts its own
result (an accuracy, or differences below 1e-5). Examples that need an optional
peer skip with a reason when it is missing.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PEERS = {"torch_roundtrip.py": "torch", "keras_roundtrip.py": "keras"}
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("*.py"))


def test_every_example_is_listed():
    assert set(SCRIPTS) >= {
        "functional_quickstart.py",
        "nnx_train.py",
        "torch_roundtrip.py",
        "keras_roundtrip.py",
    }


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS)
def test_example_runs(script):
    peer = PEERS.get(script)
    if peer and importlib.util.find_spec(peer) is None:
        pytest.skip(f"{script} needs {peer} (optional peer: pip install -e .[peers])")
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--small"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "KERAS_BACKEND": "jax"},
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert result.stdout.strip(), f"{script} printed nothing"
