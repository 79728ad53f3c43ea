"""Which examples each step trains on: shuffled epochs, sharded across processes, resumable exactly.

Epoch e uses the permutation seeded by (seed, e); process r of W takes every W-th index of it, so the
shards are disjoint and together cover the epoch. The whole state is (epoch, batch within epoch).
"""

from __future__ import annotations

import torch


class EpochSampler:
    def __init__(self, size: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        shard = size // world_size  # equal shards, so every process takes the same number of steps
        if shard < 1:
            raise ValueError(f"{size} training examples cannot be shared by {world_size} processes")
        self.size, self.seed, self.rank, self.world_size = size, seed, rank, world_size
        self.batch_size = min(batch_size, shard)  # a tiny dataset still trains, on smaller batches
        self.batches_per_epoch = shard // self.batch_size  # the ragged tail of each epoch is dropped
        self.epoch, self.batch = 0, 0
        self._order: torch.Tensor | None = None

    def _shard(self) -> torch.Tensor:
        if self._order is None:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            permutation = torch.randperm(self.size, generator=generator)
            self._order = permutation[self.rank :: self.world_size][: self.size // self.world_size]
        return self._order

    def next_indices(self) -> torch.Tensor:
        start = self.batch * self.batch_size
        indices = self._shard()[start : start + self.batch_size]
        self.batch += 1
        if self.batch == self.batches_per_epoch:
            self.epoch, self.batch, self._order = self.epoch + 1, 0, None
        return indices

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "batch": self.batch}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.batch, self._order = int(state["epoch"]), int(state["batch"]), None
        if self.batch >= self.batches_per_epoch:  # saved by fewer processes (longer shards): next epoch
            self.epoch, self.batch = self.epoch + 1, 0
