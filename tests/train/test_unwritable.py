"""A checkpoint directory that cannot be written, from the start or from some
step on, ends the run with one clear line and a process that exits at once
(Orbax's background threads used to wait minutes for a directory that was never
created, so the interpreter did not exit).

Permission bits do not stop root, so the tests make writes fail in ways that
do: a path that is (or lies under) a regular file, a directory replaced by a
file mid-run, and, where available, the immutable flag (``chattr +i``, as
root) or ``chmod 0o555`` (not root)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxseq.train import (
    Checkpointing,
    CheckpointWriteError,
    checkpoint_manager,
    fit,
)

from .test_resume import ROOT


def _read_only_how(tmp_path: Path) -> str | None:
    """How to make a directory unwritable here: "chmod" (not root), "chattr"
    (root, where the filesystem supports the immutable flag), or None."""
    if os.geteuid() != 0:
        return "chmod"
    probe = tmp_path / "chattr-probe"
    probe.mkdir()
    try:
        ok = (
            shutil.which("chattr") is not None
            and subprocess.run(
                ["chattr", "+i", str(probe)], capture_output=True
            ).returncode
            == 0
        )
    finally:
        subprocess.run(["chattr", "-i", str(probe)], capture_output=True)
    return "chattr" if ok else None


def _writable_again(path: Path) -> None:
    if path.is_dir():
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)
        path.chmod(0o755)


def _run(tmp_path: Path, ckpt: Path, *args: str) -> tuple[str, float]:
    """The worker's stderr, and the seconds between fit returning with the
    error and the process exiting."""
    out = tmp_path / "returned"
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable,
        "-m",
        "tests.train._worker",
        "unwritable",
        "--ckpt",
        str(ckpt),
        "--out",
        str(out),
        *args,
    ]
    proc = subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    ended = time.time()
    assert proc.returncode == 1, proc.stderr
    return proc.stderr, ended - float(out.read_text())


def _one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [x for x in stderr.splitlines() if x.startswith("error: ")]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.slow
def test_directory_that_becomes_a_file_mid_run_exits_at_once(tmp_path):
    ckpt = tmp_path / "ckpt"
    stderr, linger = _run(tmp_path, ckpt, "--after", "2", "--how", "replace")
    line = _one_error_line(stderr)
    assert line.startswith(
        f"error: checkpoint_dir: could not write the checkpoint of step 4 to {ckpt}: "
    ), line
    assert "Not a directory" in line
    assert linger < 10.0
    assert (tmp_path / "ckpt.moved" / "2").is_dir()  # the good one is still there


@pytest.mark.slow
def test_directory_that_becomes_read_only_mid_run_exits_at_once(tmp_path):
    how = _read_only_how(tmp_path)
    if how is None:
        pytest.skip(
            "root without chattr +i on this filesystem: cannot make a "
            "directory read-only (the file-swap test covers this path)"
        )
    ckpt = tmp_path / "ckpt"
    try:
        stderr, linger = _run(tmp_path, ckpt, "--after", "2", "--how", how)
    finally:
        _writable_again(ckpt)
    line = _one_error_line(stderr)
    assert line.startswith(
        f"error: checkpoint_dir: could not write the checkpoint of step 4 to {ckpt}: "
    ), line
    assert "not permitted" in line or "denied" in line, line
    assert linger < 10.0


def test_file_or_path_under_a_file_is_refused_up_front(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(
        CheckpointWriteError,
        match=rf"^checkpoint_dir: expected a directory, got the file {afile}\.$",
    ):
        checkpoint_manager(afile)
    with pytest.raises(
        CheckpointWriteError,
        match=rf"^checkpoint_dir: expected a writable directory, got {afile}/sub "
        r"\(Not a directory\)\.$",
    ):
        checkpoint_manager(afile / "sub")
    # fit checks it before it compiles or trains anything
    with pytest.raises(CheckpointWriteError, match="expected a directory, got the"):
        fit(
            lambda p, b, k: (jnp.mean(b[0]) * p, None),
            optax.sgd(0.1),
            jnp.zeros(()),
            (np.zeros(4, np.float32),),
            key=jax.random.key(0),
            batch_size=2,
            epochs=1,
            checkpoint=Checkpointing(afile),
        )


def test_read_only_directory_is_refused_up_front(tmp_path):
    how = _read_only_how(tmp_path)
    if how is None:
        pytest.skip("root without chattr +i on this filesystem")
    ckpt = tmp_path / "ro"
    ckpt.mkdir()
    if how == "chattr":
        subprocess.run(["chattr", "+i", str(ckpt)], check=True)
    else:
        ckpt.chmod(0o555)
    try:
        with pytest.raises(
            CheckpointWriteError,
            match=rf"^checkpoint_dir: expected a writable directory, got {ckpt} "
            r"\((Operation not permitted|Permission denied)\)\.$",
        ):
            checkpoint_manager(ckpt)
    finally:
        _writable_again(ckpt)
