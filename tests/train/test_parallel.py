"""Data parallelism: 4 forced host devices give the loss trajectory of 1 device,
and 2 processes on localhost (jax.distributed, gloo CPU collectives) train
together to the result of a single process. Each runs in a fresh subprocess
because XLA_FLAGS must be set before JAX is imported."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxseq.train import latest_step

ROOT = Path(__file__).resolve().parents[2]


def _worker(*args: str, devices: int | None = None) -> subprocess.Popen:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}
    env.pop("XLA_FLAGS", None)
    if devices is not None:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return subprocess.Popen(
        [sys.executable, "-m", "tests.train._worker", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(proc: subprocess.Popen, timeout: float = 120) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise AssertionError(f"worker timed out:\n{out}") from None
    assert proc.returncode == 0, out
    return out


def test_four_host_devices_match_one_device(tmp_path):
    out = tmp_path / "devices.json"
    _finish(_worker("devices", "--out", str(out), devices=4))
    result = json.loads(out.read_text())
    assert result["devices"] == 4
    assert result["replicated"] and result["param_devices"] == 4
    single, parallel = result["single"], result["parallel"]
    assert len(single) == len(parallel) == 6  # one step per epoch: per-step losses
    assert single[0]["train_loss"] != single[-1]["train_loss"]
    for key in ("train_loss", "train_grad_norm", "valid_loss", "valid_accuracy"):
        np.testing.assert_allclose(
            [r[key] for r in parallel], [r[key] for r in single], rtol=1e-5, err_msg=key
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_train_together(tmp_path):
    port = str(_free_port())
    ckpt = tmp_path / "ckpt"
    reference = _worker(
        "fit", "--out", str(tmp_path / "ref.npz"), "--epochs", "2", "--valid", "42"
    )
    procs = [
        _worker(
            "multiprocess",
            "--pid",
            str(pid),
            "--port",
            port,
            "--ckpt",
            str(ckpt),
            "--out",
            str(tmp_path / "mp"),
            devices=2,
        )
        for pid in (0, 1)
    ]
    for proc in procs:
        _finish(proc, timeout=90)
    _finish(reference)
    assert latest_step(ckpt) == 16  # both processes wrote one checkpoint together
    with (
        np.load(tmp_path / "mp.0.npz") as p0,
        np.load(tmp_path / "mp.1.npz") as p1,
        np.load(tmp_path / "ref.npz") as ref,
    ):
        for name in ref.files:
            np.testing.assert_array_equal(p0[name], p1[name])  # one replicated model
            np.testing.assert_allclose(p0[name], ref[name], rtol=1e-4, atol=1e-6)
    hist = json.loads((tmp_path / "mp.0.npz.json").read_text())["history"]
    ref_hist = json.loads((tmp_path / "ref.npz.json").read_text())["history"]
    for key in ("train_loss", "valid_loss", "valid_accuracy"):
        np.testing.assert_allclose(
            [r[key] for r in hist], [r[key] for r in ref_hist], rtol=1e-5, err_msg=key
        )
