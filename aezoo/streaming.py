"""Splits read from disk a batch at a time, the next batches prefetched by worker processes
(:class:`torch.utils.data.DataLoader`) while the model trains on this one, in exactly the order the
trainer gives.

A streamed split does its work in two halves. ``fetch(indices)`` reads and decodes what the
examples need (files); it runs in a worker, so it draws no random numbers: what it returns does not
depend on which worker ran it, or when. ``assemble(fetched, indices)`` runs in the training process
when the trainer takes the batch, batch after batch in the trainer's order, so it may draw from the
global generator exactly as an in-memory split's ``batch`` does (random crops). A streamed run thus
draws the same numbers at the same steps as an in-memory one, and resumes from a checkpoint (which
holds the global generator and the position in the order) exactly.
"""

from __future__ import annotations

import dataclasses
import math
import os
import signal
from collections.abc import Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

import torch

from aezoo.data import Batch, Split, _Head, iterate
from aezoo.errors import AezooError

#: Batches each worker reads ahead of the one the model trains on.
PREFETCH_PER_WORKER = 2


@runtime_checkable
class StreamedSplit(Split, Protocol):
    """A split read from disk on demand; ``batch(indices)`` is ``assemble(fetch(indices), indices)``."""

    def fetch(self, indices: Sequence[int]) -> Any:
        """What the examples ``indices`` need, read and decoded (in a worker: no random draws).
        A file that cannot be read is an :class:`AezooError` naming it."""
        ...

    def assemble(self, fetched: Any, indices: torch.Tensor) -> Batch:
        """The batch of ``indices`` from what :meth:`fetch` returned (in the training process)."""
        ...


@dataclasses.dataclass(frozen=True)
class Packed:
    """Tensors of one dtype as one flat block (:func:`pack`), so that a worker hands them over as
    one piece of shared memory: each tensor on its own costs a file descriptor and a mapping."""

    flat: torch.Tensor
    shapes: tuple[tuple[int, ...], ...]


def pack(tensors: Sequence[torch.Tensor]) -> Packed:
    """``tensors`` (one dtype) as one :class:`Packed` block."""
    flat = torch.cat([t.reshape(-1) for t in tensors]) if tensors else torch.empty(0, dtype=torch.uint8)
    return Packed(flat, tuple(tuple(t.shape) for t in tensors))


def unpack(packed: Packed) -> list[torch.Tensor]:
    """The tensors of :func:`pack`, as views of its block."""
    tensors, start = [], 0
    for shape in packed.shapes:
        size = math.prod(shape)
        tensors.append(packed.flat[start : start + size].view(shape))
        start += size
    return tensors


def default_workers() -> int:
    """Worker processes when none are asked for: one core left to the training process, at most 4."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores - 1))


def streamed(split: Split) -> StreamedSplit | None:
    """The streamed split behind ``split`` (through :meth:`DataSplits.limited`), or None."""
    while isinstance(split, _Head):
        split = split.split
    return split if isinstance(split, StreamedSplit) else None


def stream_batches(
    split: Split,
    batch_size: int,
    order: torch.Tensor,
    start: int = 0,
    *,
    workers: int | None = None,
    seed: int = 0,
) -> Iterator[Batch]:
    """The batches of :func:`aezoo.data.iterate` (``order`` from batch ``start``), the next ones
    read ahead by ``workers`` processes (default :func:`default_workers`; 0: none) when ``split`` is
    streamed. Workers are seeded from ``seed`` and never touch the global generator."""
    source = streamed(split)
    if source is None or workers == 0:
        yield from iterate(split, batch_size, order, start)
        return
    chunks = [order[lo : lo + batch_size] for lo in range(start * batch_size, len(order), batch_size)]
    if not chunks:
        return
    count = default_workers() if workers is None else workers
    loader = torch.utils.data.DataLoader(
        _Fetcher(source),
        sampler=[chunk.tolist() for chunk in chunks],
        batch_size=None,
        collate_fn=_as_fetched,
        num_workers=min(count, len(chunks)),
        prefetch_factor=PREFETCH_PER_WORKER,
        worker_init_fn=_quiet_worker,
        # Without its own generator the loader draws its workers' seeds from the global one.
        generator=torch.Generator().manual_seed(seed),
    )
    fetched_batches = iter(loader)
    try:
        for indices in chunks:
            try:
                fetched = next(fetched_batches)
            except RuntimeError as exc:
                if "DataLoader worker" not in str(exc):
                    raise
                raise AezooError(  # killed from outside: out of memory, say
                    f"a process reading the data ended unexpectedly ({str(exc).strip().splitlines()[0]}); "
                    "the last checkpoint is kept: resume the run, or train with fewer --data-workers"
                ) from None
            if isinstance(fetched, _Failure):
                raise AezooError(fetched.message)
            yield source.assemble(fetched, indices)
    finally:
        shutdown = getattr(fetched_batches, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()


@dataclasses.dataclass(frozen=True)
class _Failure:
    """A worker's :class:`AezooError`, carried back as a value so it ends in one line."""

    message: str


class _Fetcher(torch.utils.data.Dataset):
    def __init__(self, split: StreamedSplit) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, indices: list[int]) -> Any:  # type: ignore[override]
        try:
            return self.split.fetch(indices)
        except AezooError as exc:
            return _Failure(str(exc))


def _as_fetched(fetched: Any) -> Any:
    return fetched


def _quiet_worker(worker_id: int) -> None:
    """Ctrl-C, SIGTERM and SIGHUP are the training process's to handle (it stops at a step
    boundary and saves); a worker ends when the loader shuts it down or its parent dies."""
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)


__all__ = ["Packed", "StreamedSplit", "default_workers", "pack", "stream_batches", "streamed", "unpack"]
