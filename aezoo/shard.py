"""One process's share of an epoch in a run of several: of every global batch of the epoch's one
seeded order, one contiguous slice, so that a step's slices make up the batch one process would take."""

from __future__ import annotations

import dataclasses

import torch


@dataclasses.dataclass(frozen=True)
class Shard:
    """One rank's share of an epoch: its slice of every global batch in turn, and a full one's size."""

    order: torch.Tensor
    batch_size: int
    global_batch: int
    examples: int
    rank: int = 0
    world_size: int = 1

    def weight(self, batch: int) -> float:
        """This rank's loss weight in global batch ``batch``: ``world_size * its examples / all``."""
        if self.world_size == 1:
            return 1.0
        size = min(self.global_batch, self.examples - batch * self.global_batch)
        mine = slice_sizes(size, self.world_size)[self.rank]
        return self.world_size * mine / size


def slice_sizes(batch: int, world_size: int) -> list[int]:
    """The sizes ``torch.tensor_split`` cuts a batch of ``batch`` into for ``world_size`` ranks."""
    return [batch // world_size + (1 if r < batch % world_size else 0) for r in range(world_size)]


__all__ = ["Shard", "slice_sizes"]
