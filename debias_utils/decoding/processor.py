"""The logits processor that balances group words while the model generates: :class:`GroupBalanceProcessor`.

Taught in ``notebooks/07_decoding/try.ipynb``. It is thin on purpose: it reads the token ids that
``generate`` hands it, keeps the counts in a :class:`~debias_utils.decoding.state.BalanceState`, asks the
chosen rule (:mod:`debias_utils.decoding.rules`) for one shift per group, and adds the shifts to the logits.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from transformers import LogitsProcessor

from ..checks import check_number
from ..words import check_word_groups
from .rules import build_rule, shifted_kl
from .state import BalanceState
from .tokens import group_token_ids

SCOPES = ("corpus", "sequence")


class _BatchTracker:
    """Remembers the prompt of the running batch; a different shape or prompt means a new batch.

    ``generate`` calls a processor with the whole ``input_ids`` at every step (prompt included,
    left-padded), one column longer each time, so the prompt length is the width at the first call.
    """

    def __init__(self):
        self.prompt = None
        self.width = None

    def is_new(self, input_ids: torch.Tensor) -> bool:
        if self.prompt is None or input_ids.shape[0] != self.prompt.shape[0]:
            return True
        if input_ids.shape[1] != self.width + 1 or input_ids.shape[1] <= self.prompt.shape[1]:
            return True
        return not torch.equal(input_ids[:, :self.prompt.shape[1]], self.prompt)

    def start(self, input_ids: torch.Tensor) -> None:
        self.prompt = input_ids.clone()
        self.width = input_ids.shape[1]

    def step(self, input_ids: torch.Tensor) -> None:
        self.width = input_ids.shape[1]

    def reset(self) -> None:
        self.prompt = None
        self.width = None


def _expected_words(log_mass: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Probability of emitting a word of each group after the shift, ``(B, K)``."""
    moved = log_mass + shift
    rest = torch.log1p(-log_mass.exp().sum(-1, keepdim=True).clamp(max=1.0))
    return (moved - torch.cat([rest, moved], -1).logsumexp(-1, keepdim=True)).exp()


class GroupBalanceProcessor(LogitsProcessor):
    """Adjust next-token logits so that generated group words (he/she, ...) come out balanced.

    Example::

        proc = GroupBalanceProcessor(tok, {"male": ["he", "him", "his"], "female": ["she", "her"]})
        model.generate(**batch, do_sample=True, logits_processor=LogitsProcessorList([proc]))
        proc.stats()   # counts per group, share of steps intervened, mean KL per intervened step

    Taught in ``notebooks/07_decoding/try.ipynb``.

    *Rule*: ``rule`` names a class of :data:`~debias_utils.decoding.RULES` ("static", "proportional",
    "integral", "kl" — the default — or "quota"); ``strength`` is its one knob (0 is always the identity) and
    ``**rule_options`` are that rule's own options (static: ``boost``; integral: ``clip``; kl: ``horizon``,
    ``r_min``, ``keep_total``; quota: ``slack``). The built rule is ``proc.update_rule``.

    *What is counted*: group words in the generated text (decoded, case-insensitive, word boundaries), so
    words that need several tokens ("himself") are counted too. *What is steered*: the single-token
    spellings of the words (``proc.steerable``; the rest is in ``proc.count_only``).

    *When it acts*: only on rows that are still running, whose prompt names no group (prompts that
    already name one, "The woman who ...", are left alone and not counted), and where the steerable
    tokens together hold at least ``min_mass`` of the probability.

    ``scope="corpus"`` (default): counts run over every row of every batch until :meth:`reset`. Each row
    is locked to the group of its first group word, so one text stays coherent ("The nurse said that she
    ... her"): a locked row is only nudged when its own group's share of the group mass falls below
    ``lock_share`` (1.0 forbids the other groups in that row); the nudge keeps the row's total mass of
    group words, so it names people as often as before. A running locked row counts as at least
    :attr:`words_per_row` words of its group (the mean of finished batches), so rows of one batch that
    all pick a group in their first steps see each other; rows deciding at the same step are handled one
    after the other for the same reason. ``scope="sequence"``: each row is balanced on its own counts,
    with no lock — the variant that breaks coreference ("she ... he").

    All rules work for two or more groups (e.g. male / female / neutral "they"). Rules act on raw logits,
    before temperature: shares are exact at temperature 1.
    """

    def __init__(self, tokenizer, groups: Mapping[str, Sequence[str]] | None = None, rule: str = "kl",
                 strength: float = 1.0, scope: str = "corpus", min_mass: float = 0.05,
                 target: Mapping[str, float] | None = None, lock_share: float = 0.9, **rule_options):
        if scope not in SCOPES:
            raise ValueError(f"scope must be 'corpus' or 'sequence', got {scope!r}")
        self.min_mass = check_number(min_mass, "min_mass (the group mass below which nothing is steered)", 0, 1,
                                     high_open=True)
        self.lock_share = check_number(lock_share, "lock_share (a locked row's least share of its own group)", 0, 1,
                                       low_open=True)
        self.tokenizer = tokenizer
        self.groups = check_word_groups(groups)
        self.names = list(self.groups)
        self.update_rule = build_rule(rule, self.names, target, strength, **rule_options)
        self.rule, self.scope = rule, scope
        self.strength, self.target = self.update_rule.strength, self.update_rule.target
        self.token_ids, self.steerable, self.count_only = group_token_ids(tokenizer, self.groups)
        empty = [g for g in self.names if not self.token_ids[g]]
        if empty:
            raise ValueError(f"group(s) {empty} have no single-token word and cannot be steered; add words such "
                             "as pronouns that the tokenizer spells in one token")
        # All steerable ids in one tensor, group by group, so one gather / one add serves every group.
        self._all_ids = torch.tensor([t for g in self.names for t in self.token_ids[g]])
        self._id_group = torch.tensor([k for k, g in enumerate(self.names) for _ in self.token_ids[g]])
        bounds = [0]
        for g in self.names:
            bounds.append(bounds[-1] + len(self.token_ids[g]))
        self._slices = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
        self.state = BalanceState(self.groups)
        self.counter = self.state.counter
        self._special = set(getattr(tokenizer, "all_special_ids", []) or [])
        self._piece: dict[int, str] = {}
        self.eos_token_id = tokenizer.eos_token_id
        self.reset()

    # -- state ------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget all counts and statistics (start a new corpus)."""
        self._batch = _BatchTracker()
        self.state.reset()
        self._steps = 0
        self._intervened = 0
        self._kl_sum = 0.0

    def end_batch(self, sequences: torch.Tensor | None = None) -> None:
        """Close the running batch; pass ``generate``'s output to also count its last token.

        (The processor never sees the token sampled at the last step.) Optional: a new batch is detected
        by itself when the next ``generate`` call starts.
        """
        running = len(self.state.texts)
        if sequences is not None and running:
            if sequences.shape[0] != running:
                raise ValueError(f"sequences has {sequences.shape[0]} rows, the running batch {running}")
            self._append(sequences)
        self.state.end_batch()
        self._batch.reset()

    def observe(self, texts: Sequence[str]) -> None:
        """Count the group words of texts generated elsewhere as if this processor had produced them.

        Use it to start from a known state (the rules' pictures in the notebook) or to carry counts over
        from an earlier run. Example: ``proc.observe(["he said", "he and she"])`` → counts male 2, female 1.
        """
        self.state.observe(texts)

    @property
    def counts(self) -> dict[str, int]:
        """Group words generated so far in rows this processor may steer (finished batches + running one)."""
        return self.state.counts

    @property
    def words_per_row(self) -> float:
        """Mean number of group words in a row that named a group, over finished batches (1 before any)."""
        return self.state.words_per_row

    def stats(self) -> dict:
        """Counts and shares per group, rows seen and left alone, share of steps intervened, mean KL."""
        counts = self.counts
        total = sum(counts.values())
        return {
            "counts": counts,
            "shares": {g: (c / total if total else None) for g, c in counts.items()},   # None: no words yet
            "rows": self.state.rows,
            "untouched_rows": self.state.untouched_rows,
            "steps": self._steps,
            "intervened_steps": self._intervened,
            "intervention_rate": self._intervened / self._steps if self._steps else 0.0,
            "mean_kl": self._kl_sum / self._intervened if self._intervened else 0.0,
        }

    # -- token ids → text for the state -----------------------------------------------------------------
    def _piece_of(self, tid: int) -> str:
        piece = self._piece.get(tid)
        if piece is None:
            piece = "" if tid in self._special else self.tokenizer.decode([tid])
            self._piece[tid] = piece
        return piece

    def _start_batch(self, input_ids: torch.Tensor) -> None:
        self._batch.start(input_ids)
        self.state.start_batch(self.tokenizer.batch_decode(input_ids, skip_special_tokens=True))
        self._seen = input_ids.shape[1]

    def _append(self, input_ids: torch.Tensor) -> None:
        """Hand the text of the columns not yet seen to the state."""
        new = input_ids[:, self._seen:]
        if new.shape[1] == 0:
            return
        self._seen = input_ids.shape[1]
        finished = None if self.eos_token_id is None else (new == self.eos_token_id).any(1)
        skip = self.state.untouched.tolist()   # rows left alone: no need to decode them
        pieces = ["" if s else "".join(self._piece_of(t) for t in ids) for s, ids in zip(skip, new.tolist())]
        self.state.extend(pieces, finished)

    # -- shifts -----------------------------------------------------------------------------------------
    def _lock_shift(self, lock: torch.Tensor, log_mass: torch.Tensor) -> torch.Tensor:
        """Shift that gives a locked row's own group ``lock_share`` of the group mass (only if it has less).

        The total mass of group words is kept (the minimal-KL ``q`` under both constraints), so a locked
        row mentions people as often as the model wants; only the group of the mention is held.
        """
        own = F.one_hot(lock, len(self.names)).bool()
        log_own = log_mass.masked_fill(~own, -math.inf).logsumexp(-1)
        log_other = log_mass.masked_fill(own, -math.inf).logsumexp(-1)
        log_total = torch.logaddexp(log_own, log_other)
        need = torch.sigmoid(log_own - log_other) < self.lock_share
        own_shift = math.log(self.lock_share) + log_total - log_own
        other_shift = (math.log1p(-self.lock_share) if self.lock_share < 1 else -math.inf) + log_total - log_other
        shift = torch.where(own, own_shift.unsqueeze(-1), other_shift.unsqueeze(-1))
        return torch.where(need.unsqueeze(-1), shift, torch.zeros_like(shift))

    def _corpus_shift(self, gate: torch.Tensor, log_mass: torch.Tensor) -> torch.Tensor:
        """Shifts for scope="corpus", row after row: rows deciding at the same step see each other.

        Locked rows are nudged all at once; then each unlocked row is handled in turn and its expected
        group words (its adjusted group probabilities) are added to the counts before the next one, so a
        batch of rows that all reach a pronoun at once does not all swing the same way. Realised words
        replace these expectations at the next step.
        """
        counts, per_row = self.state.anticipated_counts()
        lock = self.state.lock_ids
        shift = torch.zeros_like(log_mass)
        locked = gate & (lock >= 0)
        if bool(locked.any()):
            shift[locked] = self._lock_shift(lock[locked], log_mass[locked])
        for r in torch.nonzero(gate & (lock < 0)).flatten().tolist():
            row_mass = log_mass[r:r + 1]
            s = self.update_rule.shift(counts.unsqueeze(0), row_mass)
            shift[r] = s[0]
            counts = counts + per_row * _expected_words(row_mass, s)[0]
        return shift

    # -- the processor ----------------------------------------------------------------------------------
    @torch.no_grad()
    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if input_ids.dim() != 2 or scores.dim() != 2 or input_ids.shape[0] != scores.shape[0]:
            raise ValueError("expected input_ids (batch, length) and scores (batch, vocab) with the same batch size")
        if self._batch.is_new(input_ids):
            self._start_batch(input_ids)
        else:
            self._append(input_ids)
        self._batch.step(input_ids)
        active = self.state.active
        n_active = int(active.sum())
        self._steps += n_active
        if self.strength == 0 or n_active == 0:
            return scores
        if self._all_ids.device != scores.device:
            self._all_ids, self._id_group = self._all_ids.to(scores.device), self._id_group.to(scores.device)
        # Group masses need only the normaliser and the group tokens' logits (a few dozen columns).
        log_z = scores.float().logsumexp(-1, keepdim=True)
        group_logits = scores[:, self._all_ids].float() - log_z
        log_mass = torch.stack([group_logits[:, sl].logsumexp(-1) for sl in self._slices], -1).cpu()
        gate = active & (log_mass.exp().sum(-1) >= self.min_mass) & torch.isfinite(log_mass).all(-1)
        if not bool(gate.any()):
            return scores
        if self.scope == "sequence":
            shift = self.update_rule.shift(self.state.row_counts, log_mass)
        else:
            shift = self._corpus_shift(gate, log_mass)
        shift = torch.where(gate.unsqueeze(-1), shift, torch.zeros_like(shift))
        moved = (shift.abs() > 1e-6).any(-1)
        if not bool(moved.any()):
            return scores
        self._intervened += int(moved.sum())
        self._kl_sum += float(shifted_kl(log_mass, shift)[moved].sum())
        out = scores.clone()
        per_token = shift.to(device=scores.device, dtype=out.dtype)[:, self._id_group]
        out[:, self._all_ids] = out[:, self._all_ids] + per_token
        if bool(torch.isinf(shift).any()):
            # A mask must never leave a row without a finite logit (softmax would give NaN): undo it there.
            dead = ~torch.isfinite(out).any(-1)
            if bool(dead.any()):
                out[dead] = scores[dead]
        return out

