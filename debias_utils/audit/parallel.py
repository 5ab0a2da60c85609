"""Data-parallel audits: the same audit under ``accelerate launch``, prompts split between the processes.

Run as ``accelerate launch --multi_gpu --num_processes 2 -m debias_utils.cli audit …`` — on GPUs, and also on a
machine without one, where the two processes run on the CPU (``--multi_gpu`` only picks accelerate's multi-process
launcher; ``--cpu`` would start a single process). ``torchrun --nproc_per_node 2 -m debias_utils.cli audit …`` works
the same way. Each
process generates and scores its share of every section's items; the rows are gathered on every process in their
original order, and only the main process computes the metrics and writes the report. With greedy decoding the
merged result equals a single-process run exactly (``tests/test_audit.py`` checks it); with sampling each process
draws its own random numbers, so the texts differ from a single-process run (the statistics are as valid).
Used by :func:`debias_utils.audit.audit`.
"""
from __future__ import annotations

from typing import Callable, Sequence


class Workers:
    """The processes of this run: one (plain ``python``) or several (``accelerate launch``)."""

    def __init__(self):
        import torch
        from accelerate import PartialState

        # Without a GPU, accelerate only forms a process group when told to use the CPU (gloo backend).
        self.state = PartialState(cpu=not torch.cuda.is_available())

    @property
    def count(self) -> int:
        return self.state.num_processes

    @property
    def is_main(self) -> bool:
        return self.state.is_main_process

    def map(self, work: Callable[[list], list], items: Sequence) -> list:
        """``work(items)`` with the items split between the processes; every process gets all results, in order.

        ``work`` takes a list of items and returns one result per item (a list of the same length).
        """
        items = list(items)
        if self.count == 1:
            return list(work(items))
        from accelerate.utils import gather_object

        indexed = list(enumerate(items))
        with self.state.split_between_processes(indexed) as mine:
            mine = list(mine)
            results = list(work([item for _, item in mine])) if mine else []
        if len(results) != len(mine):
            raise RuntimeError(f"work returned {len(results)} results for {len(mine)} items")
        gathered = gather_object([(index, result) for (index, _), result in zip(mine, results)])
        ordered = dict(gathered)
        if sorted(ordered) != list(range(len(items))):
            raise RuntimeError("the processes' results do not cover every item once; was the run started the same "
                               "way on every process?")
        return [ordered[i] for i in range(len(items))]

    def wait(self) -> None:
        """Let every process reach this point (before the main process writes files the others read)."""
        if self.count > 1:
            self.state.wait_for_everyone()
