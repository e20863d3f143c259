"""Data-parallel training across processes (``torchrun --nproc-per-node N -m gantools train ...``).

:func:`from_env` reads torchrun's ``WORLD_SIZE``/``RANK`` and joins the process group (gloo on
the CPU, NCCL on CUDA); without them (or with one process) it returns :class:`Single`, which
changes nothing. The engine calls the same hooks either way:

* :meth:`Parallel.shard` - every rank builds step ``k``'s batch exactly as one process would
  (deterministic per step) and keeps its own equal slice of the rows, so N ranks with batch ``B``
  see exactly the samples of one process with batch ``B`` (``B`` must divide by N).
* :meth:`Parallel.average_grads` - after each backward of G and D, gradients are all-reduced
  and divided by N: with mean-reduced losses this is the gradient of the global batch, so the
  weights match one process with batch ``B`` within float tolerance.
* :attr:`Parallel.is_main` - only rank 0 writes checkpoints, samples, metrics and the export
  and logs; checkpoints hold no world size, so ``--resume`` works with another N.
* :meth:`Parallel.agree` - a stop request (Ctrl+C, the time budget) on any rank stops all ranks
  after the same step.
* :meth:`Parallel.average_logs` - the logged losses are the means over the ranks, i.e. the losses
  of the global batch, as one process would log them.
* :func:`is_main_process` - whether this process reports (rank 0, or no torchrun): the command
  line keeps the other ranks quiet (no progress bar, no summary line).

Gradients are reduced by hand rather than through ``DistributedDataParallel`` because tasks call
G and D through their own hooks (and R1 needs double backward).
"""

from __future__ import annotations

import os
from typing import Any

import torch


class Single:
    """One process: every hook is the identity."""

    world = 1
    rank = 0
    is_main = True

    def shard(self, batch: dict) -> dict:
        return batch

    def average_grads(self, module: torch.nn.Module | None) -> None:
        pass

    def broadcast(self, module: torch.nn.Module | None) -> None:
        pass

    def agree(self, flag: bool) -> bool:
        return flag

    def average_logs(self, logs: dict[str, float]) -> dict[str, float]:
        return logs

    def close(self) -> None:
        pass


class Parallel(Single):
    """One rank of ``world`` processes in the default process group."""

    def __init__(self, rank: int, world: int, device: str = "cpu") -> None:
        self.rank, self.world, self.device = rank, world, device
        self.is_main = rank == 0

    def shard(self, batch: dict) -> dict:
        """This rank's rows of every tensor (the same equal slice of each)."""
        return {key: self._rows(value) for key, value in batch.items()}

    def _rows(self, value: Any) -> Any:
        if not isinstance(value, torch.Tensor) or value.dim() == 0:
            return value
        n = value.shape[0]
        if n % self.world:
            raise ValueError(f"batch size {n} does not divide by {self.world} processes; "
                             f"use a --batch-size that is a multiple of {self.world}")
        size = n // self.world
        return value[self.rank * size:(self.rank + 1) * size]

    def average_grads(self, module: torch.nn.Module | None) -> None:
        """Mean of every parameter's gradient over the ranks (one flat all-reduce)."""
        import torch.distributed as dist

        if module is None:
            return
        params = [p for p in module.parameters() if p.requires_grad]
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for p, g in zip(params, grads):
            p.grad = flat[offset:offset + g.numel()].view_as(g).clone()
            offset += g.numel()

    def broadcast(self, module: torch.nn.Module | None) -> None:
        """Rank 0's parameters and buffers on every rank."""
        import torch.distributed as dist

        if module is None:
            return
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src=0)

    def agree(self, flag: bool) -> bool:
        """``True`` on every rank if ``flag`` is true on any rank."""
        import torch.distributed as dist

        value = torch.tensor([1 if flag else 0], dtype=torch.int32, device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def average_logs(self, logs: dict[str, float]) -> dict[str, float]:
        """Each value averaged over the ranks (every rank logs the same keys in the same order; one
        all-reduce)."""
        import torch.distributed as dist

        keys = list(logs)  # the same order on every rank: the same code logged them
        if not keys:
            return logs
        values = torch.tensor([float(logs[k]) for k in keys], dtype=torch.float64, device=self.device)
        dist.all_reduce(values)
        return dict(zip(keys, (values / self.world).tolist()))

    def close(self) -> None:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


def is_main_process() -> bool:
    """Whether this process is rank 0 of torchrun's processes (or runs alone): read from the
    environment, so it holds before the process group exists."""
    return int(os.environ.get("RANK", "0")) == 0


def from_env(device: str = "cpu") -> Single:
    """:class:`Parallel` when torchrun started several processes (joining the group), else
    :class:`Single`. ``device`` is the training device (``cuda...``: NCCL, else gloo)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Single()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return Parallel(dist.get_rank(), dist.get_world_size(), device)
