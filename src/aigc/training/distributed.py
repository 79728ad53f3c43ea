"""Data-parallel training under `torchrun` (gloo on CPU, nccl on GPU).

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; without them everything here is a no-op for one process.
Gradients are averaged across processes by one all-reduce per optimizer step. We do this ourselves rather
than wrap the model in DistributedDataParallel because our training steps call sub-networks several times
per step and take double-backward gradient penalties, which DDP's hooks do not support; the result is the
same synchronous data parallelism.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from aigc.config import pick_device


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(preference: str) -> tuple[Distributed, torch.device]:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed(), pick_device(preference, field="train.device")
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(preference, local_rank, field="train.device")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Distributed(rank, world_size, local_rank), device


def teardown(info: Distributed) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def _average(tensors: list[torch.Tensor], info: Distributed) -> None:
    """Replace each tensor by its mean over processes, with one flat all-reduce (fewer, larger messages are faster)."""
    if not info.enabled or not tensors:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat /= info.world_size
    offset = 0
    for tensor in tensors:
        tensor.copy_(flat[offset : offset + tensor.numel()].view_as(tensor))
        offset += tensor.numel()


def average_gradients(parameters: list[torch.nn.Parameter], info: Distributed) -> None:
    """Average .grad over processes."""
    _average([p.grad for p in parameters if p.grad is not None], info)


def average_buffers(module: torch.nn.Module, info: Distributed) -> None:
    """Average floating-point buffers (BatchNorm running statistics) over processes. Each process's
    statistics follow its own shard of the data; the average is the estimate over all of it, and every
    process then holds the same buffers, so that the checkpoint rank 0 writes is what all of them hold."""
    _average([b for b in module.buffers() if b.is_floating_point()], info)


def broadcast_module(module: torch.nn.Module, info: Distributed) -> None:
    """Make every process start from rank 0's parameters and buffers."""
    if info.enabled:
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=0)


def any_process(flag: bool, info: Distributed, device: torch.device) -> bool:
    """True on every process if it is true on any (so that all stop at the same step)."""
    if not info.enabled:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def gather(obj, info: Distributed) -> list:
    if not info.enabled:
        return [obj]
    objects = [None] * info.world_size
    dist.all_gather_object(objects, obj)
    return objects


def replicas_identical(module: torch.nn.Module, info: Distributed) -> bool:
    """Whether every process holds the same parameters and buffers (BatchNorm running statistics, which
    gradient averaging does not synchronise): a cheap check, one checksum per tensor, gathered."""
    if not info.enabled:
        return True
    tensors = list(module.parameters()) + list(module.buffers())
    checksum = torch.stack([t.detach().double().sum() for t in tensors]).cpu()
    return all(torch.equal(checksum, other) for other in gather(checksum, info))
