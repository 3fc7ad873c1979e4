"""Training with Optax: schedules, train/eval steps, truncated BPTT, ridge
penalties, the ``fit`` loop, Orbax checkpoints and data parallelism.

========================  ====================================================
module                    contents
========================  ====================================================
``schedules``             :func:`robbins_monro` (0-based ``count``)
``optimizers``            :func:`optimizer` by name (Optax's own transformations)
``step``                  :class:`TrainState`, :func:`make_train_step`,
                          :func:`make_eval_step`, metric sums and counts
``tbptt``                 :func:`truncated_bptt`, :func:`chunk_lengths`
``regularization``        :func:`ridge_penalty`, :func:`ridge`, :func:`labels_by_path`
``loop``                  :func:`fit`, :class:`FitResult`, :class:`NonFiniteError`
``config``                :func:`fit`'s option groups: :class:`EarlyStopping`,
                          :class:`Checkpointing`, :class:`Logging`
``batching``              :func:`bucket_by_length`, :func:`bucket_lengths`,
                          :func:`epoch_order`, :func:`sortish_order`
``checkpoint``            Orbax: :func:`checkpoint_manager`, :func:`save_checkpoint`,
                          :func:`restore_checkpoint` (verified against checksums),
                          :func:`latest_step`, :class:`CheckpointError` and its
                          kinds, :class:`CheckpointWarning`
``parallel``              :func:`data_mesh`, :func:`replicate`, :func:`shard_batch`,
                          :func:`initialize_distributed`
========================  ====================================================
"""

from .batching import (
    BatchOrder,
    bucket_by_length,
    bucket_lengths,
    epoch_order,
    num_examples,
    sortish_batches,
    sortish_order,
    take,
)
from .checkpoint import (
    CheckpointCorruptError,
    CheckpointError,
    CheckpointMismatchError,
    CheckpointWarning,
    CheckpointWriteError,
    Restored,
    checkpoint_manager,
    latest_step,
    restore_checkpoint,
    save_checkpoint,
)
from .config import Checkpointing, EarlyStopping, Logging
from .history import plot_history, write_metrics
from .loop import FitResult, NonFiniteError, fit
from .optimizers import OPTIMIZERS, optimizer
from .parallel import (
    BATCH_AXIS,
    batch_sharded,
    data_mesh,
    initialize_distributed,
    is_primary,
    process_rows,
    replicate,
    replicated,
    shard_batch,
)
from .regularization import labels_by_path, path_name, ridge, ridge_penalty
from .schedules import robbins_monro
from .step import (
    TrainState,
    accumulate,
    init_state,
    make_eval_step,
    make_train_step,
    summarize,
    train_step_fn,
)
from .tbptt import chunk_lengths, truncated_bptt

__all__ = [
    "BATCH_AXIS",
    "BatchOrder",
    "CheckpointCorruptError",
    "CheckpointError",
    "CheckpointMismatchError",
    "CheckpointWarning",
    "CheckpointWriteError",
    "Checkpointing",
    "EarlyStopping",
    "FitResult",
    "Logging",
    "NonFiniteError",
    "OPTIMIZERS",
    "Restored",
    "TrainState",
    "accumulate",
    "batch_sharded",
    "bucket_by_length",
    "bucket_lengths",
    "checkpoint_manager",
    "chunk_lengths",
    "data_mesh",
    "epoch_order",
    "fit",
    "init_state",
    "initialize_distributed",
    "is_primary",
    "labels_by_path",
    "latest_step",
    "make_eval_step",
    "make_train_step",
    "num_examples",
    "optimizer",
    "path_name",
    "plot_history",
    "process_rows",
    "replicate",
    "replicated",
    "restore_checkpoint",
    "ridge",
    "ridge_penalty",
    "robbins_monro",
    "save_checkpoint",
    "shard_batch",
    "sortish_batches",
    "sortish_order",
    "summarize",
    "take",
    "train_step_fn",
    "truncated_bptt",
    "write_metrics",
]
