"""Resume after a crash in the middle of a checkpoint write and after a real
SIGKILL: the last good checkpoint survives each, and the run, resumed twice,
ends with the same parameters, bit for bit (CPU), as an uninterrupted run with
the same seed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from jaxseq.train import latest_step

ROOT = Path(__file__).resolve().parents[2]
STEPS = 24  # 3 epochs of 8 steps, a checkpoint every 2 steps


def _worker(*args: str) -> subprocess.Popen:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}
    env.pop("XLA_FLAGS", None)
    return subprocess.Popen(
        [sys.executable, "-m", "tests.train._worker", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(proc: subprocess.Popen, timeout: float = 120) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out
    return out


def _committed(directory: Path) -> list[int]:
    if not directory.is_dir():
        return []
    return sorted(int(p.name) for p in directory.iterdir() if p.name.isdigit())


@pytest.mark.slow
def test_crash_mid_write_and_sigkill_then_resume_is_bit_identical(tmp_path):
    ckpt = tmp_path / "ckpt"
    run = ["fit", "--ckpt", str(ckpt), "--out", str(tmp_path / "run.npz")]
    reference = _worker("fit", "--out", str(tmp_path / "ref.npz"))

    # 1. The process dies inside its third checkpoint write (step 6): the data are
    #    in a temporary directory that is never committed.
    crashed = _worker(*run, "--crash-on-commit", "3")
    out, _ = crashed.communicate(timeout=120)
    assert crashed.returncode == 9, out
    leftovers = [p.name for p in ckpt.iterdir() if ".orbax-checkpoint-tmp" in p.name]
    assert [name.split(".")[0] for name in leftovers] == ["6"]
    assert latest_step(ckpt) == 4

    # 2. Resumed from step 4, it is SIGKILLed once a later checkpoint exists.
    victim = _worker(*run, "--sleep", "0.05")
    deadline = time.monotonic() + 120
    while not any(s >= 10 for s in _committed(ckpt)):
        assert victim.poll() is None, victim.communicate()[0]
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    assert not (tmp_path / "run.npz").exists()
    killed_at = latest_step(ckpt)
    assert killed_at is not None and 10 <= killed_at < STEPS

    # 3. Resumed again, it finishes.
    _finish(_worker(*run))
    _finish(reference)
    assert latest_step(ckpt) == STEPS
    # the data order and the epoch's running sums were resumed too
    ref_hist = json.loads((tmp_path / "ref.npz.json").read_text())["history"]
    got_hist = json.loads((tmp_path / "run.npz.json").read_text())["history"]
    for key in ("train_loss", "valid_loss", "valid_accuracy"):
        assert [r[key] for r in got_hist] == [r[key] for r in ref_hist]
    with np.load(tmp_path / "ref.npz") as ref, np.load(tmp_path / "run.npz") as got:
        assert ref.files == got.files
        for name in ref.files:
            np.testing.assert_array_equal(got[name], ref[name])
