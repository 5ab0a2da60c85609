"""Decoding adjustment (解码修改): logits processors that balance social groups while the model generates.

Taught in ``notebooks/06_decoding/try.ipynb``. The idea: with two groups (men, women), before each next
token look at how many male and female words have been generated so far and adjust the logits (调整
logits) so that what comes out is balanced. Everything here is a ``transformers.LogitsProcessor``, so it
plugs into ``model.generate(logits_processor=LogitsProcessorList([...]))`` and into
:func:`debias_utils.lm.generate_manual`. ``generate`` applies custom processors *before* temperature,
top-k and top-p (see ``GenerationMixin._get_logits_processor``), so the adjustment sees the full
distribution and truncation acts on the adjusted one (tested in ``tests/test_decoding.py``).

Notation used in the docstrings: ``z`` logits, ``p = softmax(z)``, ``P_g`` the probability mass of group
``g``'s steerable tokens, ``c_g`` the number of group-``g`` words counted so far, ``C = sum_g c_g``,
``t_g`` the target share of group ``g`` (uniform by default).

* :class:`GroupBalanceProcessor` — five update rules ("static", "proportional", "integral", "kl",
  "quota"); "kl" is the default.
* :class:`SelfDebiasProcessor` — the Self-Debiasing baseline of Schick et al. (2021).
"""
from __future__ import annotations

import inspect
import math
import re
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from transformers import LogitsProcessor

RULES = ("static", "proportional", "integral", "kl", "quota")
SCOPES = ("corpus", "sequence")

#: The debiasing prefix of Schick et al. (2021) for gender, used by :class:`SelfDebiasProcessor`.
SELF_DEBIAS_PREFIX = "The following text discriminates against people because of their gender:\n"


# ----------------------------------------------------------------------------------------------------
# Words → tokens, and counting words in text
# ----------------------------------------------------------------------------------------------------

def _check_groups(groups) -> dict[str, list[str]]:
    if groups is None:
        from .groups import GENDER_WORDS

        groups = GENDER_WORDS
    if not isinstance(groups, Mapping) or len(groups) < 2:
        raise ValueError("groups must be a dict with at least two groups, e.g. "
                         "{'male': ['he', 'him'], 'female': ['she', 'her']}")
    clean: dict[str, list[str]] = {}
    owner: dict[str, str] = {}
    for name, words in groups.items():
        if isinstance(words, str) or not words:
            raise ValueError(f"group {name!r} must be a non-empty list of words, e.g. ['he', 'him']")
        clean[str(name)] = []
        for word in words:
            if not isinstance(word, str) or not word.strip():
                raise ValueError(f"group {name!r} holds {word!r}; every word must be a non-empty string")
            key = word.strip().lower()
            if key in owner and owner[key] != name:
                raise ValueError(f"the word {key!r} is in both group {owner[key]!r} and group {name!r}; "
                                 "a word can belong to one group only")
            if key not in owner:
                owner[key] = name
                clean[str(name)].append(key)
    return clean


def word_variants(word: str) -> list[str]:
    """The spellings of ``word`` that start a word in running text: ``" he"``, ``" He"``, ``"He"``.

    The bare lower-case form (``"he"``) is left out on purpose: as a token it mostly continues another
    word (``"t" + "he"`` is "the"), so steering it would steer the wrong thing.
    Example: ``word_variants("she")`` → ``[' she', ' She', 'She']``. Taught in ``notebooks/06_decoding/try.ipynb``.
    """
    cap = word[:1].upper() + word[1:]
    return list(dict.fromkeys([" " + word, " " + cap, cap]))


def group_token_ids(tokenizer, groups: Mapping[str, Sequence[str]] | None = None):
    """Token ids that spell a whole group word in one token, per group, and which words they cover.

    Returns ``(token_ids, steerable, count_only)``: ``token_ids[g]`` the single-token variants of
    :func:`word_variants`; ``steerable[g]`` the words with at least one such token; ``count_only[g]`` the
    words that always need several tokens — still counted in text, but not steerable.
    Example: ``ids, ok, multi = group_token_ids(tok, {"male": ["he", "himself"], "female": ["she"]})``.
    Taught in ``notebooks/06_decoding/try.ipynb``.
    """
    groups = _check_groups(groups)
    token_ids: dict[str, list[int]] = {}
    steerable: dict[str, list[str]] = {}
    count_only: dict[str, list[str]] = {}
    seen: dict[int, str] = {}
    for name, words in groups.items():
        token_ids[name], steerable[name], count_only[name] = [], [], []
        for word in words:
            single = []
            for variant in word_variants(word):
                ids = tokenizer(variant, add_special_tokens=False)["input_ids"]
                if len(ids) == 1:
                    single.append(ids[0])
            for tid in single:
                if seen.get(tid, name) != name:
                    raise ValueError(f"token {tid} ({word!r}) is used by groups {seen[tid]!r} and {name!r}")
                seen[tid] = name
                if tid not in token_ids[name]:
                    token_ids[name].append(tid)
            (steerable if single else count_only)[name].append(word)
    return token_ids, steerable, count_only


class WordCounter:
    """Counts group words in text, case-insensitively and on word boundaries ("he's" counts, "the" not).

    ``WordCounter({"male": ["he"], "female": ["she"]}).count("He said she")`` → ``{"male": 1, "female": 1}``;
    ``.first_group(text)`` is the group of the first group word (or None). Multi-token words ("himself")
    are counted like any other word because counting works on decoded text, not on token ids.
    Taught in ``notebooks/06_decoding/try.ipynb``.
    """

    def __init__(self, groups: Mapping[str, Sequence[str]] | None = None):
        self.groups = _check_groups(groups)
        self.word_group = {w: g for g, words in self.groups.items() for w in words}
        alternatives = sorted(self.word_group, key=len, reverse=True)
        self.pattern = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in alternatives) + r")\b", re.IGNORECASE)

    def count(self, text: str) -> dict[str, int]:
        """``{group: number of its words in text}``."""
        counts = dict.fromkeys(self.groups, 0)
        for match in self.pattern.finditer(text):
            counts[self.word_group[match.group(0).lower()]] += 1
        return counts

    def first_group(self, text: str) -> str | None:
        """The group of the first group word in ``text``, or None when there is none."""
        match = self.pattern.search(text)
        return None if match is None else self.word_group[match.group(0).lower()]


# ----------------------------------------------------------------------------------------------------
# The closed-form KL projection
# ----------------------------------------------------------------------------------------------------

def kl_shift(log_mass: torch.Tensor, target: torch.Tensor, keep_total: bool = False) -> torch.Tensor:
    """Per-group logit shifts that move the group masses to the shares ``target`` with the least KL change.

    Among all ``q`` whose groups split their total mass as ``target`` (``Q_g / sum_h Q_h = r_g``),
    ``q ∝ p · exp(s_g)`` with ``s_g = log(r_g / P_g) − sum_h r_h log(r_h / P_h)`` minimises ``KL(q‖p)``
    (an I-projection onto a linear constraint). Tokens outside the groups, and tokens inside one group,
    keep their relative odds. For two groups this is ``s_m = η(1 − r)``, ``s_f = −η r`` with
    ``η = logit(r) − log(P_m / P_f)``. With ``keep_total=True`` the total group mass ``P_G`` is held fixed as
    well (a second linear constraint): ``s_g = log(r_g P_G / P_g)``, i.e. ``Q_g = r_g P_G``.
    ``log_mass`` and ``target`` are ``(..., K)``; rows of ``target`` sum to 1 and are > 0.
    Example: ``kl_shift(torch.log(torch.tensor([0.4, 0.1])), torch.tensor([0.5, 0.5]))`` →
    ``[-0.693, 0.693]``. Taught in ``notebooks/06_decoding/try.ipynb``.
    """
    log_ratio = torch.log(target) - log_mass
    if keep_total:
        return log_ratio + log_mass.logsumexp(-1, keepdim=True)
    return log_ratio - (target * log_ratio).sum(-1, keepdim=True)


def shifted_kl(log_mass: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``KL(q‖p)`` in nats when group ``g``'s logits move by ``shift_g`` (``-inf`` = masked); ``(..., K) → (...)``.

    Only group masses are needed: ``Z = 1 − P_G + sum_g P_g e^{s_g}`` and ``KL = sum_g Q_g s_g − log Z``
    with ``Q_g = P_g e^{s_g} / Z``. Example: ``shifted_kl(torch.log(torch.tensor([0.5])), torch.tensor([0.]))`` → 0.
    Used for the processor's "mean KL per intervened step"; taught in ``notebooks/06_decoding/try.ipynb``.
    """
    rest = torch.log1p(-log_mass.exp().sum(-1).clamp(max=1.0))
    moved = log_mass + shift
    log_z = torch.logsumexp(torch.cat([rest.unsqueeze(-1), moved], -1), -1)
    weights = (moved - log_z.unsqueeze(-1)).exp()
    term = torch.where(weights > 0, weights * shift, torch.zeros_like(shift))
    return (term.sum(-1) - log_z).clamp(min=0.0)


# ----------------------------------------------------------------------------------------------------
# Which rows of a generate() call belong to which batch
# ----------------------------------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------------------------------
# GroupBalanceProcessor
# ----------------------------------------------------------------------------------------------------

class GroupBalanceProcessor(LogitsProcessor):
    """Adjust next-token logits so that generated group words (he/she, ...) come out balanced.

    Example::

        proc = GroupBalanceProcessor(tok, {"male": ["he", "him", "his"], "female": ["she", "her"]})
        model.generate(**batch, do_sample=True, logits_processor=LogitsProcessorList([proc]))
        proc.stats()   # counts per group, share of steps intervened, mean KL per intervened step

    Taught in ``notebooks/06_decoding/try.ipynb``.

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

    *Rules* (``strength`` is the one knob; 0 is always the identity):

    ============== =========================================================================================
    ``static``     ``z_v += strength`` for the tokens of group ``boost`` — a constant bias, what
                   ``SequenceBiasLogitsProcessor`` does; it balances only if the bias is tuned by hand.
    ``proportional`` ``z_v −= strength · d_g``, ``d_g = c_g / C − t_g`` (share error; 0 when ``C = 0``).
    ``integral``   ``z_v −= strength · clip(c_g − t_g C, ±clip)`` — the raw count gap, which sums the
                   errors over time, so no steady-state error remains.
    ``kl``         target share ``r*_g = clip(t_g + (t_g C − c_g) / horizon, r_min, 1)`` (renormalised),
                   then the minimal-KL shift :func:`kl_shift` scaled by ``strength`` (1 = reach ``r*``).
    ``quota``      multiply the mass of every group with ``c_g − t_g C ≥ slack`` by ``1 − strength``
                   (``strength = 1`` masks it).
    ============== =========================================================================================

    All rules work for two or more groups (e.g. male / female / neutral "they"); ``static`` needs
    ``boost``. Rules act on raw logits, before temperature: shares are exact at temperature 1.
    """

    def __init__(self, tokenizer, groups: Mapping[str, Sequence[str]] | None = None, rule: str = "kl",
                 strength: float = 1.0, scope: str = "corpus", min_mass: float = 0.05,
                 target: Mapping[str, float] | None = None, horizon: float = 2.0, r_min: float = 0.02,
                 boost: str | None = None, clip: float = 5.0, slack: float = 1.0, lock_share: float = 0.9,
                 keep_total: bool = True):
        if rule not in RULES:
            raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
        if scope not in SCOPES:
            raise ValueError(f"scope must be 'corpus' or 'sequence', got {scope!r}")
        if not isinstance(strength, (int, float)) or not math.isfinite(strength) or strength < 0:
            raise ValueError(f"strength must be a finite number >= 0, got {strength!r}")
        if rule in ("kl", "quota") and strength > 1:
            raise ValueError(f"for rule={rule!r} strength is a fraction in [0, 1] (1 = full effect), got {strength}")
        if not 0 <= min_mass < 1:
            raise ValueError(f"min_mass must be in [0, 1), got {min_mass}")
        if horizon <= 0 or clip <= 0 or slack < 0 or not 0 < r_min < 0.5:
            raise ValueError("need horizon > 0, clip > 0, slack >= 0 and 0 < r_min < 0.5")
        if not 0 < lock_share <= 1:
            raise ValueError(f"lock_share must be in (0, 1], got {lock_share}")
        self.tokenizer = tokenizer
        self.groups = _check_groups(groups)
        self.names = list(self.groups)
        if rule == "static":
            if boost not in self.groups:
                raise ValueError(f"rule='static' adds a constant bias to one group: pass boost=<one of {self.names}>")
        self.boost = boost
        if target is None:
            target = {g: 1 / len(self.names) for g in self.names}
        if set(target) != set(self.names) or any(not v > 0 for v in target.values()) \
                or abs(sum(target.values()) - 1) > 1e-6:
            raise ValueError(f"target must give every group of {self.names} a share > 0, summing to 1; got {target}")
        self.target = torch.tensor([float(target[g]) for g in self.names])
        self.rule, self.strength, self.scope, self.min_mass = rule, float(strength), scope, float(min_mass)
        self.horizon, self.r_min, self.clip, self.slack = float(horizon), float(r_min), float(clip), float(slack)
        self.lock_share = float(lock_share)
        self.keep_total = bool(keep_total)
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
        self.counter = WordCounter(self.groups)
        self._special = set(getattr(tokenizer, "all_special_ids", []) or [])
        self._piece: dict[int, str] = {}
        self.eos_token_id = tokenizer.eos_token_id
        self.reset()

    # -- state ------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget all counts and statistics (start a new corpus)."""
        self._batch = _BatchTracker()
        self._done = torch.zeros(len(self.names))   # counts of finished batches
        self._locked_rows_done = 0   # rows of finished batches that named a group ...
        self._locked_words_done = 0.0   # ... and the group words they produced (for words_per_row)
        self._rows_done = 0
        self._untouched_done = 0
        self._texts: list[str] = []
        self._row_counts = torch.zeros(0, len(self.names))
        self._lock = torch.zeros(0, dtype=torch.long)   # -1 = not locked
        self._untouched = torch.zeros(0, dtype=torch.bool)
        self._finished = torch.zeros(0, dtype=torch.bool)
        self._steps = 0
        self._intervened = 0
        self._kl_sum = 0.0

    def _fold_batch(self) -> None:
        if self._texts:
            keep = ~self._untouched
            self._done += self._row_counts[keep].sum(0)
            locked = keep & (self._lock >= 0)
            self._locked_rows_done += int(locked.sum())
            self._locked_words_done += float(self._row_counts[locked].sum())
            self._rows_done += len(self._texts)
            self._untouched_done += int(self._untouched.sum())
        self._texts = []
        self._row_counts = torch.zeros(0, len(self.names))

    def end_batch(self, sequences: torch.Tensor | None = None) -> None:
        """Close the running batch; pass ``generate``'s output to also count its last token.

        (The processor never sees the token sampled at the last step.) Optional: a new batch is detected
        by itself when the next ``generate`` call starts.
        """
        if sequences is not None and self._texts:
            if sequences.shape[0] != len(self._texts):
                raise ValueError(f"sequences has {sequences.shape[0]} rows, the running batch {len(self._texts)}")
            self._append(sequences)
        self._fold_batch()
        self._batch.reset()

    def observe(self, texts: Sequence[str]) -> None:
        """Count the group words of texts generated elsewhere as if this processor had produced them.

        Use it to start from a known state (the rules' pictures in the notebook) or to carry counts over
        from an earlier run. Example: ``proc.observe(["he said", "he and she"])`` → counts male 2, female 1.
        """
        if isinstance(texts, str):
            raise TypeError("texts must be a list of strings; wrap one text in a list")
        for text in texts:
            counts = self.counter.count(text)
            row = torch.tensor([counts[g] for g in self.names], dtype=torch.float32)
            self._done += row
            self._rows_done += 1
            if row.sum() > 0:
                self._locked_rows_done += 1
                self._locked_words_done += float(row.sum())

    def _piece_of(self, tid: int) -> str:
        piece = self._piece.get(tid)
        if piece is None:
            piece = "" if tid in self._special else self.tokenizer.decode([tid])
            self._piece[tid] = piece
        return piece

    def _start_batch(self, input_ids: torch.Tensor) -> None:
        self._fold_batch()
        self._batch.start(input_ids)
        n = input_ids.shape[0]
        prompts = self.tokenizer.batch_decode(input_ids, skip_special_tokens=True)
        self._untouched = torch.tensor([any(self.counter.count(p).values()) for p in prompts], dtype=torch.bool)
        self._texts = [""] * n
        self._row_counts = torch.zeros(n, len(self.names))
        self._lock = torch.full((n,), -1, dtype=torch.long)
        self._finished = torch.zeros(n, dtype=torch.bool)
        self._seen = input_ids.shape[1]

    def _append(self, input_ids: torch.Tensor) -> None:
        """Add the columns not yet seen to each row's text and recount that row."""
        new = input_ids[:, self._seen:]
        if new.shape[1] == 0:
            return
        self._seen = input_ids.shape[1]
        if self.eos_token_id is not None:
            self._finished |= (new == self.eos_token_id).any(1)
        for r, ids in enumerate(new.tolist()):
            if self._untouched[r]:
                continue
            self._texts[r] += "".join(self._piece_of(t) for t in ids)
            text = self._texts[r]
            counts = self.counter.count(text)
            self._row_counts[r] = torch.tensor([counts[g] for g in self.names], dtype=torch.float32)
            first = self.counter.first_group(text)
            self._lock[r] = -1 if first is None else self.names.index(first)

    @property
    def counts(self) -> dict[str, int]:
        """Group words generated so far in rows this processor may steer (finished batches + running one)."""
        total = self._done + self._row_counts[~self._untouched].sum(0) if self._texts else self._done
        return {g: int(round(float(c))) for g, c in zip(self.names, total)}

    def stats(self) -> dict:
        """Counts and shares per group, rows seen and left alone, share of steps intervened, mean KL."""
        counts = self.counts
        total = sum(counts.values())
        rows = self._rows_done + len(self._texts)
        untouched = self._untouched_done + (int(self._untouched.sum()) if self._texts else 0)
        return {
            "counts": counts,
            "shares": {g: (c / total if total else None) for g, c in counts.items()},   # None: no words yet
            "rows": rows,
            "untouched_rows": untouched,
            "steps": self._steps,
            "intervened_steps": self._intervened,
            "intervention_rate": self._intervened / self._steps if self._steps else 0.0,
            "mean_kl": self._kl_sum / self._intervened if self._intervened else 0.0,
        }

    def describe(self) -> str:
        """A short human-readable summary: rule, scope, and which words are steerable or only counted."""
        lines = [f"GroupBalanceProcessor(rule={self.rule!r}, strength={self.strength}, scope={self.scope!r})"]
        for g in self.names:
            lines.append(f"  {g}: {len(self.token_ids[g])} tokens steer {len(self.steerable[g])} words; "
                         f"counted only: {self.count_only[g] or 'none'}")
        return "\n".join(lines)

    # -- the rules --------------------------------------------------------------------------------------
    def _rule_shift(self, counts: torch.Tensor, log_mass: torch.Tensor) -> torch.Tensor:
        """``(B, K)`` group shifts for unlocked rows; ``counts`` is ``(B, K)``."""
        t = self.target
        total = counts.sum(-1, keepdim=True)
        if self.rule == "static":
            shift = torch.zeros_like(log_mass)
            shift[:, self.names.index(self.boost)] = self.strength
            return shift
        if self.rule == "proportional":
            share = torch.where(total > 0, counts / total.clamp(min=1), t)
            return -self.strength * (share - t)
        gap = counts - t * total
        if self.rule == "integral":
            return -self.strength * gap.clamp(-self.clip, self.clip)
        if self.rule == "quota":
            if self.strength >= 1:
                penalty = -math.inf
            else:
                penalty = math.log1p(-self.strength)
            over = (gap >= self.slack) & (gap > 0)   # with no words yet nobody is over quota
            return torch.where(over, torch.full_like(gap, penalty), torch.zeros_like(gap))
        # kl
        goal = (t + (t * total - counts) / self.horizon).clamp(min=self.r_min, max=1.0)
        goal = goal / goal.sum(-1, keepdim=True)
        return self.strength * kl_shift(log_mass, goal, keep_total=self.keep_total)

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

    @staticmethod
    def _expected_words(log_mass: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """Probability of emitting a word of each group after the shift, ``(B, K)``."""
        moved = log_mass + shift
        rest = torch.log1p(-log_mass.exp().sum(-1, keepdim=True).clamp(max=1.0))
        return (moved - torch.cat([rest, moved], -1).logsumexp(-1, keepdim=True)).exp()

    def _corpus_shift(self, gate: torch.Tensor, log_mass: torch.Tensor) -> torch.Tensor:
        """Shifts for scope="corpus", row after row: rows deciding at the same step see each other.

        Locked rows are nudged all at once; then each unlocked row is handled in turn and its expected
        group words (its adjusted group probabilities) are added to the counts before the next one, so a
        batch of rows that all reach a pronoun at once does not all swing the same way. Realised words
        replace these expectations at the next step.
        """
        counts, per_row = self._anticipated_counts()
        shift = torch.zeros_like(log_mass)
        locked = gate & (self._lock >= 0)
        if bool(locked.any()):
            shift[locked] = self._lock_shift(self._lock[locked], log_mass[locked])
        for r in torch.nonzero(gate & (self._lock < 0)).flatten().tolist():
            row_mass = log_mass[r:r + 1]
            s = self._rule_shift(counts.unsqueeze(0), row_mass)
            shift[r] = s[0]
            counts = counts + per_row * self._expected_words(row_mass, s)[0]
        return shift

    @property
    def words_per_row(self) -> float:
        """Mean number of group words in a row that named a group, over finished batches (1 before any)."""
        if self._locked_rows_done == 0:
            return 1.0
        return self._locked_words_done / self._locked_rows_done

    def _anticipated_counts(self) -> tuple[torch.Tensor, float]:
        """Corpus counts used by the rules: finished batches + the running batch, looking ahead.

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
        active = ~self._untouched & ~self._finished
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
            shift = self._rule_shift(self._row_counts, log_mass)
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


# ----------------------------------------------------------------------------------------------------
# Self-Debiasing (Schick, Udupa & Schütze 2021)
# ----------------------------------------------------------------------------------------------------

class SelfDebiasProcessor(LogitsProcessor):
    """Self-Debiasing baseline: down-weight tokens that a "biased" prefix makes more likely.

    A second pass of the same model reads ``prefix + text`` (the prefix *describes* the bias, e.g.
    :data:`SELF_DEBIAS_PREFIX`) and gives ``p_bias``. Each token's probability becomes
    ``p̃(w) ∝ p(w) · max(ε, exp(−λ · max(0, p_bias(w) − p(w))))`` (Schick et al. 2021, eq. 3, with their
    λ = 50). Costs one extra forward pass per step (its own KV cache).
    Example: ``SelfDebiasProcessor(model, tok)`` in ``model.generate(logits_processor=...)``.
    Taught in ``notebooks/06_decoding/try.ipynb``.
    """

    def __init__(self, model, tokenizer, prefix: str = SELF_DEBIAS_PREFIX, decay: float = 50.0,
                 epsilon: float = 0.01):
        if not prefix:
            raise ValueError("prefix must be a non-empty text that describes the bias to avoid")
        if decay < 0 or not 0 < epsilon <= 1:
            raise ValueError("need decay >= 0 and 0 < epsilon <= 1")
        self.model, self.tokenizer = model, tokenizer
        self.prefix_ids = tokenizer(prefix, add_special_tokens=False)["input_ids"]
        self.decay, self.epsilon = float(decay), float(epsilon)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self._cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        self.reset()

    def reset(self) -> None:
        """Forget the running batch and the statistics."""
        self._batch = _BatchTracker()
        self._cache = None
        self._steps = 0
        self._kl_sum = 0.0

    def stats(self) -> dict:
        """Steps processed and mean KL(q‖p) per step."""
        return {"steps": self._steps, "mean_kl": self._kl_sum / self._steps if self._steps else 0.0}

    def _forward(self, ids, mask, positions):
        kwargs = {self._cache_arg: self._cache} if self._cache is not None else {}
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, **kwargs)
        # Read "cache" first: asking a transformers-5 output for "past_key_values" logs a deprecation warning.
        self._cache = out["cache"] if "cache" in out else out.get("past_key_values")
        return out.logits[:, -1, :].float()

    @torch.no_grad()
    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        device = scores.device
        if self._batch.is_new(input_ids):
            self._batch.start(input_ids)
            rows = []
            for row in input_ids.tolist():
                start = 0
                while start < len(row) - 1 and row[start] == self.pad_id:
                    start += 1
                rows.append(self.prefix_ids + row[start:])
            width = max(len(r) for r in rows)
            ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for i, r in enumerate(rows):
                ids[i, width - len(r):] = torch.tensor(r)
                mask[i, width - len(r):] = 1
            self._mask = mask.to(device)
            self._cache = None
            positions = (self._mask.cumsum(-1) - 1).clamp(min=0)
            biased = self._forward(ids.to(device), self._mask, positions)
        else:
            new = input_ids[:, self._batch.width:]
            self._mask = torch.cat([self._mask, torch.ones_like(new)], -1)
            positions = self._mask.sum(-1, keepdim=True) - 1 - torch.arange(new.shape[1] - 1, -1, -1, device=device)
            biased = self._forward(new, self._mask, positions)
        self._batch.step(input_ids)
        logp = F.log_softmax(scores.float(), -1)
        logp_bias = F.log_softmax(biased, -1)
        gap = (logp_bias.exp() - logp.exp()).clamp(min=0)
        log_alpha = (-self.decay * gap).clamp(min=math.log(self.epsilon))
        out = logp + log_alpha
        q = F.log_softmax(out, -1)
        kl = (q.exp() * (q - logp)).nan_to_num(0.0).sum(-1)
        self._steps += input_ids.shape[0]
        self._kl_sum += float(kl.sum())
        return out.to(scores.dtype)
