"""Training on several processes (``torchrun``, ``aezoo train --nproc N``): what the trainer needs
to know about the others, so that its loop reads the same with one process or many.

Each process (a *rank*) takes, of every global batch of the epoch's one seeded order, one contiguous
slice: a step's slices make up the batch one process would take. After each backward pass the
gradients are averaged over the ranks, weighted by their examples, so every rank takes the same
step: DistributedDataParallel's algorithm rather than its wrapper, which follows ``forward`` and
cannot follow a model's own ``training_step`` with its several optimisers and backward passes.
Rank 0 alone writes the run folder and talks to the user; metrics are reduced over the ranks in
rank order, and stops and saves are agreed on at step boundaries. NCCL on CUDA, gloo on the CPU; a
process that dies ends the others' next collective with :class:`PeerLost`.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import math
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, NoReturn

import torch

from aezoo.errors import AezooError
from aezoo.shard import Shard, slice_sizes
from aezoo.trainconfig import select_device

if TYPE_CHECKING:
    from aezoo.data import Split
    from aezoo.stopping import StopRequests

#: Checkpoint tensors holding rank R's random generators (R >= 1; rank 0's are ``rng/torch``).
RANK_RNG = "rng/rank/{rank}/{kind}"
#: Set by ``aezoo train --nproc`` in its processes: it reports a lost process itself, in one line.
LAUNCHER_ENV = "AEZOO_LAUNCHER"


class PeerLost(AezooError):
    """Another process of the run died or failed: this one cannot go on without it."""

    exit_code = 3  # not 2: the launcher tells the process that failed from those that lost it


@dataclasses.dataclass
class Context:
    """Where this process stands among the run's: one process (the default) or a torchrun group."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    #: The gloo group for decisions and CPU tensors (None: the default group, already gloo).
    control: Any = None

    @property
    def active(self) -> bool:
        """Whether there are other processes (collectives do something)."""
        return self.world_size > 1

    @property
    def is_writer(self) -> bool:
        """Rank 0: the one process that writes the run folder and talks to the user."""
        return self.rank == 0

    # -- set-up ------------------------------------------------------------------------------------

    def device(self, name: str) -> torch.device:
        """The device this rank trains on: ``--device`` with one process; with several, the GPU of
        its local rank (``auto`` or ``cuda``) or the CPU."""
        if not self.active:
            return select_device(name)
        if self.backend == "nccl":
            torch.cuda.set_device(self.local_rank)
            return torch.device("cuda", self.local_rank)
        if name in ("auto", "cpu"):
            return torch.device("cpu")
        raise AezooError(
            f"--device {name}: several processes train on cpu, or on cuda with one GPU each "
            "(--device auto or cuda)"
        )

    def resume_hint(self) -> str:
        """What to add to ``aezoo train --resume RUN`` to continue on as many processes."""
        if not self.active:
            return ""
        if int(os.environ.get("LOCAL_WORLD_SIZE", self.world_size)) == self.world_size:
            return f" --nproc {self.world_size}"
        return f" under torchrun, on {self.world_size} processes"

    def seed_noise(self, seed: int) -> None:
        """Give each rank its own stream of model noise (dropout, sampling): rank 0 keeps the
        single-process one, the others start from their own seed."""
        if self.rank > 0:
            torch.manual_seed(seed + 1_000_003 * self.rank)  # CUDA's generators too

    # -- the data ----------------------------------------------------------------------------------

    def usable_examples(self, examples: int, batch_size: int) -> int:
        """The examples of an epoch that are trained on: all, except a last batch too small to give
        each rank two examples (one: a lone example upsets batch norm), which is dropped."""
        if batch_size < self.world_size:
            raise AezooError(
                f"--batch-size {batch_size} is the global batch; it must give each of the "
                f"{self.world_size} processes at least one example"
            )
        least = self.world_size * (2 if batch_size >= 2 * self.world_size else 1)
        rest = examples % batch_size
        if examples > 1 and 0 < rest < least:
            return examples - rest
        return examples

    def steps_per_epoch(self, examples: int, batch_size: int) -> int:
        return math.ceil(self.usable_examples(examples, batch_size) / batch_size)

    def shard(self, order: torch.Tensor, batch_size: int) -> Shard:
        """This rank's share of the epoch's ``order``: of each global batch of ``batch_size``, one
        contiguous slice (sizes differ by one at most), so the slices of a step make up the batch."""
        order = order[: self.usable_examples(len(order), batch_size)]
        if not self.active:
            return Shard(order, batch_size, batch_size, len(order))
        mine = []
        for lo in range(0, len(order), batch_size):
            batch = order[lo : lo + batch_size]
            mine.append(torch.tensor_split(batch, self.world_size)[self.rank])
        own = slice_sizes(batch_size, self.world_size)[self.rank]
        whole = torch.cat(mine) if mine else order[:0]
        return Shard(whole, own, batch_size, len(order), self.rank, self.world_size)

    # -- every step --------------------------------------------------------------------------------

    def average_gradients(self, parameters: Iterable[torch.Tensor]) -> None:
        """Average the gradients of ``parameters`` over the ranks (one all-reduce per dtype)."""
        if not self.active:
            return
        grads: dict[tuple[torch.dtype, torch.device], list[torch.Tensor]] = {}
        for p in parameters:
            if p.grad is not None:
                grads.setdefault((p.grad.dtype, p.grad.device), []).append(p.grad)
        for group in grads.values():
            flat = torch.cat([g.reshape(-1) for g in group])
            with self._collective():
                torch.distributed.all_reduce(flat)
            flat.div_(self.world_size)
            offset = 0
            for g in group:
                g.copy_(flat[offset : offset + g.numel()].view_as(g))
                offset += g.numel()

    def agree(self, stop: StopRequests, save_due: bool) -> tuple[bool, bool]:
        """Whether any rank was asked to stop (then every rank records that signal) and whether any
        found a periodic save due: decided together, so all ranks act at the same step."""
        if not self.active:
            return stop.requested, save_due
        flags = torch.tensor([stop.signum or 0, int(save_due)], dtype=torch.long)
        with self._collective():
            torch.distributed.all_reduce(flags, torch.distributed.ReduceOp.MAX, group=self.control)
        signum, save = int(flags[0]), bool(flags[1])
        if signum and stop.signum is None:
            stop.signum = signum
        return bool(signum), save

    def first_bad_step(self, bad: torch.Tensor) -> torch.Tensor:
        """The earliest step any rank found a non-finite loss at (-1: none)."""
        if not self.active:
            return bad
        never = torch.iinfo(torch.long).max
        earliest = torch.where(bad < 0, never, bad).clone()
        with self._collective():
            torch.distributed.all_reduce(earliest, torch.distributed.ReduceOp.MIN)
        return torch.where(earliest == never, -1, earliest)

    # -- metrics -----------------------------------------------------------------------------------

    def settle_window(self, window: dict[str, list[torch.Tensor]]) -> None:
        """Replace each step's training metrics by their mean over the ranks, summed in rank order
        (so the same on every rank, however the values were batched); a value already settled is
        left as it is, so settling at a save and again at the record changes nothing."""
        if not self.active:
            return
        for key, values in window.items():
            if not values:
                continue
            mine = torch.stack([v.float().mean() for v in values])
            gathered = [torch.empty_like(mine) for _ in range(self.world_size)]
            with self._collective():
                torch.distributed.all_gather(gathered, mine)
            total = sum(gathered[1:], gathered[0])  # in rank order
            same = torch.stack(gathered).eq(gathered[0]).all(0)
            window[key] = list(torch.where(same, gathered[0], total / self.world_size).unbind())

    def window_means(self, window: dict[str, list[torch.Tensor]]) -> dict[str, float]:
        """The training record's values: each metric's mean over the steps since the last one."""
        self.settle_window(window)
        return {
            key: float(torch.stack([v.float().mean() for v in values]).mean())
            for key, values in window.items()
        }

    def evaluate(self, evaluate: Callable[..., dict[str, float]], split: Split) -> dict[str, float]:
        """``evaluate(split, indices=...)`` on this rank's contiguous share of ``split``, and the
        means over the whole split (weighted by examples, summed in rank order)."""
        n = len(split)
        if not self.active or n < self.world_size:
            return evaluate(split, indices=None)
        lo, hi = n * self.rank // self.world_size, n * (self.rank + 1) // self.world_size
        means = evaluate(split, indices=torch.arange(lo, hi))
        keys = list(means)  # the same on every rank: the same model's metrics
        mine = torch.tensor([means[k] * (hi - lo) for k in keys], dtype=torch.float64)
        totals = self._gather_cpu(mine)
        total = sum(totals[1:], totals[0])  # in rank order
        return {key: float(total[i]) / n for i, key in enumerate(keys)}

    # -- the model and the checkpoint -----------------------------------------------------------------

    def sync_module(self, module: torch.nn.Module, *, buffers_only: bool = False) -> None:
        """Give every rank rank 0's parameters (unless ``buffers_only``) and buffers (batch norm's
        running statistics, which each rank updates from its own batches)."""
        if not self.active:
            return
        tensors = list(module.buffers()) + ([] if buffers_only else list(module.parameters()))
        with self._collective(), torch.no_grad():
            for tensor in tensors:
                torch.distributed.broadcast(tensor.data, 0)

    def prepare_save(
        self, module: torch.nn.Module, window: dict[str, list[torch.Tensor]]
    ) -> dict[str, torch.Tensor]:
        """Before rank 0 saves: every rank's training metrics settled into the window, rank 0's
        buffers on every rank (what a resumed rank gets), and the others' random generators."""
        self.settle_window(window)
        self.sync_module(module, buffers_only=True)
        return self.rank_rng_states()

    def rank_rng_states(self) -> dict[str, torch.Tensor]:
        """Every rank's random generators, for rank 0 to save (rank 0's own are saved as in a
        single-process run); empty with one process."""
        if not self.active:
            return {}
        kinds = {"torch": torch.get_rng_state()}
        if self.backend == "nccl":
            kinds["cuda"] = torch.cuda.get_rng_state()
        states = {}
        for kind, state in kinds.items():
            for rank, value in enumerate(self._gather_cpu(state)):
                if rank > 0:
                    states[RANK_RNG.format(rank=rank, kind=kind)] = value
        return states

    def restore_rng(self, tensors: dict[str, torch.Tensor], seed: int, step: int) -> None:
        """Take back this rank's generators from a checkpoint; a rank it has none for (a resume on
        more processes than saved it) starts a stream of its own, from ``seed`` and ``step``."""
        if self.rank == 0:
            return
        state = tensors.get(RANK_RNG.format(rank=self.rank, kind="torch"))
        if state is None:
            self.seed_noise(seed + 7919 * step)
            return
        torch.set_rng_state(state)
        cuda = tensors.get(RANK_RNG.format(rank=self.rank, kind="cuda"))
        if cuda is not None and self.backend == "nccl":
            torch.cuda.set_rng_state(cuda)

    # -- talking among ranks ---------------------------------------------------------------------------

    def from_writer(self, produce: Callable[[], str]) -> str:
        """``produce()`` run on rank 0, on every rank; when it fails, the others end quietly."""
        if not self.active:
            return produce()
        text, failed = "", False
        if self.is_writer:
            try:
                text = produce()
            except BaseException:
                failed = True
                self.broadcast_text(None)
                raise
        received = self.broadcast_text(text if not failed else None)
        if received is None:
            raise SystemExit(2)
        return received

    def broadcast_text(self, text: str | None) -> str | None:
        """Rank 0's ``text`` on every rank (None stands for a failure); never pickled."""
        if not self.active:
            return text
        data = torch.tensor(list(text.encode("utf-8")) if text is not None else [], dtype=torch.uint8)
        size = torch.tensor([len(data) if text is not None else -1], dtype=torch.long)
        with self._collective():
            torch.distributed.broadcast(size, 0, group=self.control)
            if int(size) < 0:
                return None
            if not self.is_writer:
                data = torch.empty(int(size), dtype=torch.uint8)
            if int(size):
                torch.distributed.broadcast(data, 0, group=self.control)
        return bytes(data.tolist()).decode("utf-8")

    def _gather_cpu(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        tensor = tensor.detach().cpu().contiguous()
        gathered = [torch.empty_like(tensor) for _ in range(self.world_size)]
        with self._collective():
            torch.distributed.all_gather(gathered, tensor, group=self.control)
        return gathered

    @contextlib.contextmanager
    def _collective(self) -> Iterator[None]:
        """A collective whose failure (a rank died or failed) becomes :class:`PeerLost`."""
        try:
            yield
        except RuntimeError as exc:
            detail = re.sub(r"^\[[^\]]*\]\s*", "", str(exc).strip().split("\n")[0]) or type(exc).__name__
            raise PeerLost(
                f"rank {self.rank} of {self.world_size}: another process of this run stopped ({detail[:120]}); "
                "the run keeps its last checkpoint (resume it with --resume)"
            ) from exc


_current = Context()


def current() -> Context:
    """This process's :class:`Context` (one process until :func:`start` joins a group)."""
    return _current


def reports(error: AezooError) -> bool:
    """Whether this process prints ``error``: rank 0 does (once for all); another rank only says
    that it lost the others, and not even that under ``aezoo train --nproc``, which says it."""
    if isinstance(error, PeerLost):
        return not os.environ.get(LAUNCHER_ENV)
    return os.environ.get("RANK", "0") == "0"  # torchrun's, even before this process joined the group


def launched() -> bool:
    """Whether this process was started by torchrun with others (``WORLD_SIZE`` above 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def start(device: str = "auto") -> Context:
    """Join the process group torchrun set up (its environment), once: NCCL when this rank trains
    on a GPU, else gloo. Without torchrun, or with one process, nothing to join."""
    global _current
    if _current.active or not launched():
        return _current
    dist = torch.distributed
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    gpu = device in ("auto", "cuda") and torch.cuda.is_available()
    if gpu and local_rank >= torch.cuda.device_count():
        raise AezooError(f"process {local_rank} of this machine has no GPU of its own "
                         f"({torch.cuda.device_count()} here): fewer processes, or --device cpu")  # fmt: skip
    backend = "nccl" if gpu else "gloo"
    try:
        if not dist.is_initialized():
            dist.init_process_group(backend)
        control = dist.new_group(backend="gloo") if backend == "nccl" else None
    except (RuntimeError, ValueError) as exc:
        raise AezooError(f"could not join the other {world - 1} processes of this run: {exc}") from exc
    _current = Context(rank, world, local_rank, backend, control)
    atexit.register(finish)
    return _current


def finish() -> None:
    """Leave the process group (before the interpreter exits: gloo's threads abort otherwise)."""
    global _current
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        with contextlib.suppress(RuntimeError, ValueError):
            torch.distributed.destroy_process_group()
    _current = Context()


def exit_now(status: int) -> NoReturn:
    """End a process of a run of several with ``status``: leave the group, flush, and exit without
    the interpreter's finalisation. There a gloo worker thread still holding a tensor wants the GIL,
    Python ends that thread, and the process aborts ("terminate called without an active
    exception"); every file of the run is already written and synced by then."""
    finish()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


__all__ = ["Context", "PeerLost", "Shard", "current", "exit_now", "finish", "launched", "reports", "start"]
