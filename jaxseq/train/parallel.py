"""Data parallelism with ``jax.sharding``, on one process or many.

The batch axis is split over a one-dimensional device mesh and the parameters
(the whole :class:`~jaxseq.train.TrainState`) are replicated. Nothing else is
needed: ``jax.jit`` compiles the train step once for the global batch, XLA
inserts the all-reduce of the gradient (the mean over the global batch is a sum
over devices), and every device applies the same update. There is no parameter
server and no hand-written ``pmean``.

With several processes (one per host, :func:`initialize_distributed`), the mesh
spans every process's devices (``jax.devices()``), each process feeds only its
own rows of each global batch (:func:`process_rows`), and
:func:`shard_batch` / :func:`replicate` assemble global arrays from the
process-local pieces (``jax.make_array_from_process_local_data``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

#: Name of the mesh axis the batch is split over.
BATCH_AXIS = "batch"


def initialize_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    local_device_ids: Sequence[int] | None = None,
    cpu_collectives: str | None = "gloo",
) -> None:
    """Join a multi-process JAX run: ``jax.distributed.initialize`` plus CPU setup.

    Call it first thing in every process, before any other JAX call. On a cluster
    whose launcher JAX recognises (SLURM, Open MPI, Cloud TPU, Kubernetes with
    the JAX operator) all arguments may be left out; otherwise give the same
    ``coordinator_address`` (``host:port`` of process 0) and ``num_processes``
    everywhere and each process its own ``process_id``.

    Args:
        coordinator_address: ``"host:port"`` of process 0's coordinator service.
        num_processes: total number of processes.
        process_id: this process's rank, ``0 .. num_processes - 1``.
        local_device_ids: restrict this process to these local devices (e.g.
            one process per GPU).
        cpu_collectives: collectives for the CPU backend (``"gloo"``; ``"mpi"``
            needs an MPI build), so that CPU-only processes can all-reduce;
            ``None`` leaves JAX's default. GPUs use NCCL and TPUs ICI regardless.
    """
    if cpu_collectives is not None:
        jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
    jax.distributed.initialize(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
        local_device_ids=local_device_ids,
    )


def data_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh over ``devices`` (default: every device of every process),
    ordered by process, with axis :data:`BATCH_AXIS`."""
    devices = list(jax.devices() if devices is None else devices)
    devices.sort(key=lambda d: (d.process_index, d.id))
    return Mesh(np.array(devices), (BATCH_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    """The sharding of a value copied to every device of ``mesh``."""
    return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    """The sharding of arrays split along their leading (batch) axis."""
    return NamedSharding(mesh, PartitionSpec(BATCH_AXIS))


def _is_key(x: Any) -> bool:
    return isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Copy every leaf of ``tree`` to every device of ``mesh``.

    Each process passes the same values (e.g. parameters initialised from the
    same seed, or restored from the same checkpoint). PRNG keys are handled.
    """
    sharding = replicated(mesh)

    def put(x):
        if _is_key(x):
            data = put(jax.random.key_data(x))
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return jax.device_put(x, sharding)  # already global
        return jax.make_array_from_process_local_data(sharding, np.asarray(x))

    return jax.tree.map(put, tree)


def process_rows(batch_size: int) -> slice:
    """This process's rows of a global batch of ``batch_size`` examples.

    Raises:
        ValueError: if ``batch_size`` is not a multiple of the device count.
    """
    n_dev, n_proc = jax.device_count(), jax.process_count()
    if batch_size % n_dev:
        raise ValueError(
            f"batch_size: expected a multiple of the number of devices ({n_dev}) "
            f"for data parallelism, got {batch_size}."
        )
    per = batch_size // n_proc
    start = jax.process_index() * per
    return slice(start, start + per)


def shard_batch(local_batch: Any, mesh: Mesh) -> Any:
    """Global arrays split over the batch axis from this process's rows.

    Args:
        local_batch: pytree of NumPy arrays holding this process's rows
            (:func:`process_rows`); with one process, the whole batch.
        mesh: from :func:`data_mesh`.
    """
    sharding = batch_sharded(mesh)
    return jax.tree.map(
        lambda a: jax.make_array_from_process_local_data(sharding, np.asarray(a)),
        local_batch,
    )


def is_primary() -> bool:
    """Whether this is process 0 (the one that logs, plots and prints)."""
    return jax.process_index() == 0
