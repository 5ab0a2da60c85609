"""What :class:`~debias_utils.decoding.GroupBalanceProcessor` remembers: group words counted and rows locked.

Taught in ``notebooks/07_decoding/try.ipynb``. :class:`BalanceState` works on text, not token ids — the
processor decodes the new tokens and hands over the pieces — so it can be driven and tested without a
tokenizer or a model (as transformers keeps a processor's state in a class of its own, e.g. the state of
``SynthIDTextWatermarkLogitsProcessor``).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn.functional as F

from ..checks import check_texts
from ..words import WordCounter


class BalanceState:
    """Counts of group words over a corpus of batches, and each running row's lock to its first group.

    Example::

        state = BalanceState({"male": ["he", "him"], "female": ["she", "her"]})
        state.start_batch(["The nurse said that", "The woman said"])   # row 1 names a group: left alone
        state.extend([" she", " he"])
        state.locks, state.counts      # ['female', None], {'male': 0, 'female': 1}
        state.end_batch()              # fold the batch into the corpus counts

    A *batch* is the rows of one ``generate`` call. Rows whose prompt already names a group are *untouched*:
    not counted, never steered. A row is *locked* to the group of its first group word (recomputed from the
    whole text, so " he" followed by "r" becomes "her"). Section 4 of ``notebooks/07_decoding/try.ipynb``
    explains batches and locks; there it is read through ``proc.stats()`` and ``proc.counts``.
    """

    def __init__(self, groups: Mapping[str, Sequence[str]] | None = None):
        self.counter = WordCounter(groups)
        self.groups = self.counter.groups
        self.names = list(self.groups)
        self.reset()

    def reset(self) -> None:
        """Forget every count (start a new corpus)."""
        self._done = torch.zeros(len(self.names))   # counts of finished batches
        self._locked_rows_done = 0   # rows of finished batches that named a group ...
        self._locked_words_done = 0.0   # ... and the group words they produced (for words_per_row)
        self._rows_done = 0
        self._untouched_done = 0
        self._clear_batch()

    def _clear_batch(self, n: int = 0) -> None:
        self._texts: list[str] = [""] * n
        self._row_counts = torch.zeros(n, len(self.names))
        self._lock = torch.full((n,), -1, dtype=torch.long)   # -1 = not locked
        self._untouched = torch.zeros(n, dtype=torch.bool)
        self._finished = torch.zeros(n, dtype=torch.bool)

    # -- driving it -------------------------------------------------------------------------------------
    def start_batch(self, prompts: Sequence[str]) -> None:
        """Close the running batch (if any) and start one row per prompt; prompts naming a group are left alone."""
        prompts = check_texts(prompts, "prompts")
        self.end_batch()
        self._clear_batch(len(prompts))
        self._untouched = torch.tensor([any(self.counter.count(p).values()) for p in prompts], dtype=torch.bool)

    def extend(self, pieces: Sequence[str], finished: Sequence[bool] | torch.Tensor | None = None) -> None:
        """Append one piece of generated text per running row and recount those rows.

        ``finished`` (optional, one bool per row) marks rows that just produced their end-of-text token:
        they stay counted but no longer look ahead (see :meth:`anticipated_counts`).
        """
        if isinstance(pieces, str) or len(pieces) != len(self._texts):
            raise ValueError(f"pass one text piece per running row ({len(self._texts)}; call start_batch first "
                             f"if that is 0), got {pieces!r}")
        if finished is not None:
            self._finished |= torch.as_tensor(finished, dtype=torch.bool).cpu()
        for r, (piece, skip) in enumerate(zip(pieces, self._untouched.tolist())):
            if skip:
                continue
            self._texts[r] += piece
            # Recount the whole text: a piece can complete or change a word ("he" + "r" is "her").
            text = self._texts[r]
            counts = self.counter.count(text)
            self._row_counts[r] = torch.tensor([counts[g] for g in self.names], dtype=torch.float32)
            first = self.counter.first_group(text)
            self._lock[r] = -1 if first is None else self.names.index(first)

    def end_batch(self) -> None:
        """Fold the running batch into the corpus counts (nothing happens when no batch is running)."""
        if self._texts:
            keep = ~self._untouched
            self._done += self._row_counts[keep].sum(0)
            locked = keep & (self._lock >= 0)
            self._locked_rows_done += int(locked.sum())
            self._locked_words_done += float(self._row_counts[locked].sum())
            self._rows_done += len(self._texts)
            self._untouched_done += int(self._untouched.sum())
        self._clear_batch()

    def observe(self, texts: Sequence[str]) -> None:
        """Count texts generated elsewhere as finished rows, e.g. ``state.observe(["he said", "he and she"])``."""
        for text in check_texts(texts):
            counts = self.counter.count(text)
            row = torch.tensor([counts[g] for g in self.names], dtype=torch.float32)
            self._done += row
            self._rows_done += 1
            if row.sum() > 0:
                self._locked_rows_done += 1
                self._locked_words_done += float(row.sum())

    # -- reading it -------------------------------------------------------------------------------------
    @property
    def texts(self) -> list[str]:
        """The generated text of each running row so far (``""`` for rows left alone)."""
        return list(self._texts)

    @property
    def locks(self) -> list[str | None]:
        """The group each running row is locked to (its first group word), or None."""
        return [None if k < 0 else self.names[k] for k in self._lock.tolist()]

    @property
    def lock_ids(self) -> torch.Tensor:
        """:attr:`locks` as group indices into :attr:`names`, ``-1`` = not locked; ``(B,)``."""
        return self._lock.clone()

    @property
    def row_counts(self) -> torch.Tensor:
        """Group words in each running row, ``(B, K)`` (zeros for rows left alone)."""
        return self._row_counts.clone()

    @property
    def untouched(self) -> torch.Tensor:
        """Running rows whose prompt names a group (never counted, never steered), ``(B,)`` bool."""
        return self._untouched.clone()

    @property
    def finished(self) -> torch.Tensor:
        """Running rows that produced their end-of-text token, ``(B,)`` bool."""
        return self._finished.clone()

    @property
    def active(self) -> torch.Tensor:
        """Running rows that may be steered: not left alone and not finished, ``(B,)`` bool."""
        return ~self._untouched & ~self._finished

    @property
    def rows(self) -> int:
        """Rows seen since :meth:`reset`: finished batches, observed texts and the running batch."""
        return self._rows_done + len(self._texts)

    @property
    def untouched_rows(self) -> int:
        """Rows seen since :meth:`reset` whose prompt named a group."""
        return self._untouched_done + int(self._untouched.sum())

    @property
    def counts(self) -> dict[str, int]:
        """Group words in the rows that may be steered: finished batches, observed texts, the running batch."""
        total = self._done + self._row_counts[~self._untouched].sum(0) if self._texts else self._done
        return {g: int(round(float(c))) for g, c in zip(self.names, total)}

    @property
    def words_per_row(self) -> float:
        """Mean number of group words in a finished row that named a group (1 before any)."""
        if self._locked_rows_done == 0:
            return 1.0
        return self._locked_words_done / self._locked_rows_done

    def anticipated_counts(self) -> tuple[torch.Tensor, float]:
        """Corpus counts ``(K,)`` the rules act on — finished rows + the running batch, looking ahead — and
        :attr:`words_per_row`.

        A running row that has picked a group will keep writing about that person ("she ... her ...
        her"), so it counts as at least ``words_per_row`` words of its group right away. Without this
        look-ahead, rows of one batch that all pick a group in the first steps would be judged on their
        first word only and the batch would end unbalanced.
        """
        per_row = self.words_per_row
        rows = self._row_counts[~self._untouched]
        lock = self._lock[~self._untouched]
        running = ~self._finished[~self._untouched]
        ahead = rows.clone()
        pick = running & (lock >= 0)
        if bool(pick.any()):
            own = F.one_hot(lock[pick], len(self.names)).float() * per_row
            ahead[pick] = torch.maximum(rows[pick], own)
        return self._done + ahead.sum(0), per_row
