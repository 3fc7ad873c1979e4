"""Subprocess entry points for the training tests that need a fresh process:
a run to SIGKILL and resume, a crash inside a checkpoint write, forced host
devices (XLA_FLAGS must be set before JAX is imported), multi-process runs and
a checkpoint directory that cannot be written (the process must exit).

Run as ``python -m tests.train._worker <command> ...`` from the repository root.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def _fit(args, collate=None, **extra):
    import jax
    import numpy as np

    from jaxseq.train import Checkpointing, Logging, fit, optimizer

    from . import _task

    def slow(batch):
        if args.sleep:
            time.sleep(args.sleep)  # slow the run down so the test can kill it mid-way
        return batch

    return fit(
        _task.loss_fn,
        optimizer("adam", 1e-2, clip_norm=1.0),
        _task.init_params(jax.random.key(1)),
        _task.make_data(0, 128),
        key=jax.random.key(0),
        batch_size=16,
        epochs=args.epochs,
        seed=5,
        valid_data=_task.make_data(1, args.valid),
        eval_batch_size=40,
        collate=collate or slow,
        checkpoint=args.ckpt and Checkpointing(args.ckpt, every=args.every),
        logging=Logging(progress=False),
        **extra,
    ), np


def _save(path, result, np):
    import jax

    leaves = [np.asarray(x) for x in jax.tree.leaves(result.state.params)]
    np.savez(path, *leaves)
    with open(path + ".json", "w") as f:
        json.dump({"history": result.history, "step": int(result.state.step)}, f)


def cmd_fit(args):
    if args.crash_on_commit:
        _crash_on_commit(args.crash_on_commit)
    result, np = _fit(args)
    _save(args.out, result, np)


def _crash_on_commit(n):
    """Die (as if killed) right before the n-th checkpoint is committed: its data
    are written to the temporary directory, which is never renamed."""
    from orbax.checkpoint._src.path import atomicity

    cls = atomicity.AtomicRenameTemporaryPath
    original = cls.finalize
    calls = [0]

    async def finalize(self, *a, **k):
        # items are finalised inside the step directory first; count step commits
        calls[0] += self.get_final().name.isdigit()
        if calls[0] == n and self.get_final().name.isdigit():
            sys.stdout.flush()
            os._exit(9)
        return await original(self, *a, **k)

    cls.finalize = finalize


def cmd_unwritable(args):
    """A run whose checkpoint directory cannot be written, from the start or
    from the second checkpoint on (``--after 2``: once step 2 is committed, the
    directory is made unwritable with ``--how``: ``replace`` swaps it for a
    file, ``chattr`` sets the immutable flag (root), ``chmod`` makes it
    read-only (not root)). Like a CLI, it prints the error as one line on
    stderr and exits 1, writing the time it returned to ``--out``."""
    import subprocess
    from pathlib import Path

    from jaxseq.train import CheckpointError

    ckpt = Path(args.ckpt)
    calls = [0]

    def collate(batch):
        calls[0] += 1
        if args.after and calls[0] == args.after + 2:
            deadline = time.monotonic() + 60
            while not (ckpt / str(args.after)).is_dir():
                assert time.monotonic() < deadline, "no checkpoint appeared"
                time.sleep(0.01)
            if args.how == "replace":
                ckpt.rename(ckpt.with_name(ckpt.name + ".moved"))
                ckpt.write_text("not a directory")
            elif args.how == "chattr":
                subprocess.run(["chattr", "+i", str(ckpt)], check=True)
            else:
                ckpt.chmod(0o555)
        return batch

    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    from jaxseq.train import Checkpointing, Logging, fit

    def loss_fn(w, batch, key):  # quick to compile
        return jnp.mean((batch[0] @ w - batch[1]) ** 2), None

    x = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
    try:
        fit(
            loss_fn,
            optax.sgd(0.1),
            jnp.zeros(3),
            (x, x.sum(1)),
            key=jax.random.key(0),
            batch_size=8,
            epochs=args.epochs,
            collate=collate,
            checkpoint=Checkpointing(ckpt, every=2),
            logging=Logging(progress=False),
        )
        code = 0
    except CheckpointError as err:
        print(f"error: {err}", file=sys.stderr)
        code = 1
    with open(args.out, "w") as f:
        f.write(repr(time.time()))
    sys.exit(code)


def cmd_devices(args):
    """The same run on 1 device and data-parallel on all devices. One step per
    epoch, so the per-epoch history is the per-step loss trajectory."""
    import jax

    from jaxseq.train import Logging, data_mesh, fit, optimizer

    from . import _task

    # 42 validation examples in batches of 40: the short last batch (2 rows on 4
    # devices) is evaluated replicated, the full one sharded.
    common = dict(
        key=jax.random.key(0),
        batch_size=16,
        epochs=args.steps,
        seed=5,
        valid_data=_task.make_data(1, 42),
        eval_batch_size=40,
        logging=Logging(progress=False),
    )
    run = lambda **kw: fit(
        _task.loss_fn,
        optimizer("adam", 1e-2, clip_norm=1.0),
        _task.init_params(jax.random.key(1)),
        _task.make_data(0, 16),
        **common,
        **kw,
    )
    single, parallel = run(), run(mesh=data_mesh())
    leaves = jax.tree.leaves(parallel.state)
    out = {
        "devices": jax.device_count(),
        "replicated": all(x.sharding.is_fully_replicated for x in leaves),
        "param_devices": len(jax.tree.leaves(parallel.params)[0].sharding.device_set),
        "single": single.history,
        "parallel": parallel.history,
    }
    with open(args.out, "w") as f:
        json.dump(out, f)


def cmd_multiprocess(args):
    """One of several processes training together (CPU collectives over gloo)."""
    from jaxseq.train import initialize_distributed

    initialize_distributed(f"localhost:{args.port}", args.nproc, args.pid)
    import jax

    from jaxseq.train import data_mesh

    result, np = _fit(args, mesh=data_mesh())
    assert jax.process_count() == args.nproc
    _save(f"{args.out}.{args.pid}.npz", result, np)


def main(argv=None):
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("fit")
    p.add_argument("--ckpt")
    p.add_argument("--out", required=True)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--every", type=int, default=2)
    p.add_argument("--sleep", type=float, default=0.0)
    p.add_argument("--crash-on-commit", type=int, default=0)
    p.add_argument("--valid", type=int, default=40)
    p.set_defaults(fn=cmd_fit)
    p = sub.add_parser("unwritable")
    p.add_argument("--ckpt", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--after", type=int, default=0)
    p.add_argument("--how", choices=("replace", "chattr", "chmod"), default="replace")
    p.set_defaults(fn=cmd_unwritable)
    p = sub.add_parser("devices")
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=6)
    p.set_defaults(fn=cmd_devices)
    p = sub.add_parser("multiprocess")
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--nproc", type=int, default=2)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ckpt")
    p.add_argument("--out", required=True)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--every", type=int, default=4)
    p.add_argument("--valid", type=int, default=42)
    p.add_argument("--sleep", type=float, default=0.0)
    p.set_defaults(fn=cmd_multiprocess)
    args = parser.parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    main()
