"""The five update rules of :class:`~debias_utils.decoding.GroupBalanceProcessor`, one small class each.

Taught in ``notebooks/07_decoding/try.ipynb``. A rule turns the group words counted so far and the
next-token group masses into one logit shift per group: ``rule.shift(counts, log_mass)`` with both ``(B, K)``
(``K`` groups) gives the ``(B, K)`` shifts ``s_g`` that the processor adds to every steerable token of group
``g``. Rules know nothing about tokenizers or batches, so each can be checked on hand-made tensors.

Notation: ``p = softmax(z)``, ``P_g`` the mass of group ``g``'s steerable tokens (``log_mass = log P``),
``c_g`` the words of group ``g`` counted so far, ``C = sum_g c_g``, ``t_g`` the target share (uniform by
default), ``λ`` the strength (0 is always the identity).

=================== ============================================================================================
``static``          ``s_g = λ`` for the group ``boost``, 0 otherwise — a constant bias, what transformers'
                    ``SequenceBiasLogitsProcessor`` does; it balances only if ``λ`` is tuned by hand.
``proportional``    ``s_g = −λ (c_g / C − t_g)``, the share error (0 while ``C = 0``).
``integral``        ``s_g = −λ clip(c_g − t_g C, ±clip)``, the raw count gap: it sums past errors.
``kl``              target share ``r*_g = clip(t_g + (t_g C − c_g) / horizon, r_min, 1)`` (renormalised), then
                    ``λ ·`` the minimal-KL shift :func:`kl_shift` (``λ = 1`` reaches ``r*``).
``quota``           ``s_g = log(1 − λ)`` for every group with ``c_g − t_g C ≥ slack`` (``λ = 1`` masks it).
=================== ============================================================================================

:data:`RULES` maps each name to its class; :func:`build_rule` builds one by name and refuses options that
belong to another rule.
"""
from __future__ import annotations

import math
import numbers
from typing import Mapping, Sequence

import numpy as np
import torch

from ..checks import check_number


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
    ``[-0.693, 0.693]``. Taught in ``notebooks/07_decoding/try.ipynb``.
    """
    log_ratio = torch.log(target) - log_mass
    if keep_total:
        return log_ratio + log_mass.logsumexp(-1, keepdim=True)
    return log_ratio - (target * log_ratio).sum(-1, keepdim=True)


def shifted_kl(log_mass: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``KL(q‖p)`` in nats when group ``g``'s logits move by ``shift_g`` (``-inf`` = masked); ``(..., K) → (...)``.

    Only group masses are needed: ``Z = 1 − P_G + sum_g P_g e^{s_g}`` and ``KL = sum_g Q_g s_g − log Z``
    with ``Q_g = P_g e^{s_g} / Z``. Example: ``shifted_kl(torch.log(torch.tensor([0.5])), torch.tensor([0.]))`` → 0.
    Used for the processor's "mean KL per intervened step"; taught in ``notebooks/07_decoding/try.ipynb``.
    """
    rest = torch.log1p(-log_mass.exp().sum(-1).clamp(max=1.0))
    moved = log_mass + shift
    log_z = torch.logsumexp(torch.cat([rest.unsqueeze(-1), moved], -1), -1)
    weights = (moved - log_z.unsqueeze(-1)).exp()
    term = torch.where(weights > 0, weights * shift, torch.zeros_like(shift))
    return (term.sum(-1) - log_z).clamp(min=0.0)


# ----------------------------------------------------------------------------------------------------
# Arguments every rule shares
# ----------------------------------------------------------------------------------------------------

def check_target(names: Sequence[str], target: Mapping[str, float] | None = None) -> torch.Tensor:
    """The target shares as a ``(K,)`` tensor in the order of ``names`` (uniform when ``None``), or a clear error.

    Example: ``check_target(["male", "female"], {"male": 0.3, "female": 0.7})`` → ``tensor([0.3, 0.7])``.
    The notebook's exercise "another target" reaches it as ``GroupBalanceProcessor(..., target=...)``.
    """
    if target is None:
        target = {g: 1 / len(names) for g in names}
    # `not v > 0` also refuses NaN; a sum that is inf or NaN fails the closeness test.
    if not isinstance(target, Mapping) or set(target) != set(names) \
            or any(isinstance(v, bool) or not isinstance(v, numbers.Real) or not v > 0 for v in target.values()) \
            or not abs(sum(target.values()) - 1) <= 1e-6:
        raise ValueError(f"target must give every group of {list(names)} a share > 0, summing to 1; got {target}")
    return torch.tensor([float(target[g]) for g in names])


class Rule:
    """What every update rule shares: the group names, the target shares and the strength ``λ``.

    Subclasses set ``name``, ``options`` (their own keyword arguments) and ``max_strength``, check their
    options in ``__init__`` and implement :meth:`shift`. The rules' arithmetic is ``teaching_shift`` in
    section 3 of ``notebooks/07_decoding/try.ipynb``, which reaches them as ``GroupBalanceProcessor(rule=...)``.
    """

    name = ""
    options: tuple[str, ...] = ()
    max_strength: float | None = None   # kl and quota: λ is a fraction of the full effect

    def __init__(self, names: Sequence[str], target: Mapping[str, float] | None = None, strength: float = 1.0):
        if isinstance(names, str) or len(names) < 2 or len(set(names)) != len(names):
            raise ValueError(f"names must list at least two different groups, e.g. ['male', 'female']; got {names!r}")
        self.names = [str(n) for n in names]
        self.target = check_target(self.names, target)
        strength = check_number(strength, "strength", 0)
        if self.max_strength is not None and strength > self.max_strength:
            raise ValueError(f"for rule={self.name!r} strength is a fraction in [0, {self.max_strength:g}] "
                             f"(1 = full effect), got {strength}")
        self.strength = strength

    def shift(self, counts: torch.Tensor, log_mass: torch.Tensor) -> torch.Tensor:
        """``(B, K)`` logit shifts per group from counts ``(B, K)`` and log group masses ``(B, K)``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        own = ", ".join(f"{o}={getattr(self, o)!r}" for o in self.options)
        return f"{type(self).__name__}(strength={self.strength}{', ' + own if own else ''})"


# ----------------------------------------------------------------------------------------------------
# The five rules
# ----------------------------------------------------------------------------------------------------

class StaticRule(Rule):
    """``s = λ`` for the group ``boost``: a constant bias, blind to the counts.

    Example: ``StaticRule(["male", "female"], strength=2.0, boost="female").shift(c, m)`` → ``[[0., 2.]]``.
    In the notebook: ``GroupBalanceProcessor(rule="static", boost="female")``.
    """

    name = "static"
    options = ("boost",)

    def __init__(self, names, target=None, strength=1.0, boost: str | None = None):
        super().__init__(names, target, strength)
        if boost not in self.names:
            raise ValueError(f"rule='static' adds a constant bias to one group: pass boost=<one of {self.names}>")
        self.boost = boost
        self._column = self.names.index(boost)

    def shift(self, counts, log_mass):
        shift = torch.zeros_like(log_mass)
        shift[:, self._column] = self.strength
        return shift


class ProportionalRule(Rule):
    """``s_g = −λ (c_g / C − t_g)``: push against the share error; no push before the first word.

    Example: counts ``[[3, 1]]``, ``λ = 2`` → ``[[-0.5, 0.5]]``. In the notebook: ``rule="proportional"``.
    """

    name = "proportional"

    def shift(self, counts, log_mass):
        t = self.target
        total = counts.sum(-1, keepdim=True)
        # With no words yet the share is undefined: take the target itself, i.e. no push.
        share = torch.where(total > 0, counts / total.clamp(min=1), t)
        return -self.strength * (share - t)


class IntegralRule(Rule):
    """``s_g = −λ clip(c_g − t_g C, ±clip)``: push against the raw count gap, which sums past errors.

    Example: counts ``[[6, 5]]``, ``λ = 1`` → ``[[-0.5, 0.5]]``. In the notebook: ``rule="integral"``.
    """

    name = "integral"
    options = ("clip",)

    def __init__(self, names, target=None, strength=1.0, clip: float = 5.0):
        super().__init__(names, target, strength)
        self.clip = check_number(clip, "clip (the largest count gap the integral rule pushes against)", 0,
                                 low_open=True)

    def shift(self, counts, log_mass):
        gap = counts - self.target * counts.sum(-1, keepdim=True)
        return -self.strength * gap.clamp(-self.clip, self.clip)


class KLRule(Rule):
    """Move the group masses to the share ``r*`` that closes the count gap over ``horizon`` words, at least KL.

    ``r*_g = clip(t_g + (t_g C − c_g) / horizon, r_min, 1)`` renormalised; then ``λ ·`` :func:`kl_shift`
    (``keep_total=True``: the total mass of group words stays as the model wants it).
    Example: counts ``[[6, 5]]``, masses ``[[0.3, 0.1]]`` → ``r* = [0.25, 0.75]``, so ``Q = [0.1, 0.3]``.
    In the notebook: ``rule="kl"``, the processor's default.
    """

    name = "kl"
    options = ("horizon", "r_min", "keep_total")
    max_strength = 1.0

    def __init__(self, names, target=None, strength=1.0, horizon: float = 2.0, r_min: float = 0.02,
                 keep_total: bool = True):
        super().__init__(names, target, strength)
        self.horizon = check_number(horizon, "horizon (words over which the kl rule closes the gap)", 0,
                                    low_open=True)
        self.r_min = check_number(r_min, "r_min (the smallest share the kl rule aims at)", 0, 0.5,
                                  low_open=True, high_open=True)
        if not isinstance(keep_total, (bool, np.bool_)):
            raise TypeError(f"keep_total must be True or False, got {keep_total!r}")
        self.keep_total = bool(keep_total)

    def shift(self, counts, log_mass):
        t = self.target
        total = counts.sum(-1, keepdim=True)
        goal = (t + (t * total - counts) / self.horizon).clamp(min=self.r_min, max=1.0)
        goal = goal / goal.sum(-1, keepdim=True)
        return self.strength * kl_shift(log_mass, goal, keep_total=self.keep_total)


class QuotaRule(Rule):
    """Multiply the mass of every group ``slack`` or more words over its quota by ``1 − λ`` (λ = 1: mask it).

    Example: counts ``[[6, 5]]``, ``slack=0.5``, ``λ = 0.5`` → ``[[log 0.5, 0.]]``.
    In the notebook: ``GroupBalanceProcessor(rule="quota", slack=0.5)``.
    """

    name = "quota"
    options = ("slack",)
    max_strength = 1.0

    def __init__(self, names, target=None, strength=1.0, slack: float = 1.0):
        super().__init__(names, target, strength)
        self.slack = check_number(slack, "slack (how many words over its quota a group may be)", 0)

    def shift(self, counts, log_mass):
        gap = counts - self.target * counts.sum(-1, keepdim=True)
        penalty = -math.inf if self.strength >= 1 else math.log1p(-self.strength)
        over = (gap >= self.slack) & (gap > 0)   # with no words yet nobody is over quota
        return torch.where(over, torch.full_like(gap, penalty), torch.zeros_like(gap))


#: Rule name → class. Iterating gives the names in the course's order ("kl" is the processor's default).
RULES: dict[str, type[Rule]] = {cls.name: cls for cls in (StaticRule, ProportionalRule, IntegralRule, KLRule,
                                                          QuotaRule)}


def build_rule(rule: str, names: Sequence[str], target: Mapping[str, float] | None = None, strength: float = 1.0,
               **options) -> Rule:
    """The rule called ``rule`` (a key of :data:`RULES`) with its own ``options``; any other option is refused.

    Example: ``build_rule("kl", ["male", "female"], horizon=4.0)`` → ``KLRule(strength=1.0, horizon=4.0, …)``;
    ``build_rule("kl", ["male", "female"], clip=3)`` raises ``TypeError`` (clip belongs to "integral").
    :class:`~debias_utils.decoding.GroupBalanceProcessor` builds its rule with it.
    """
    if not isinstance(rule, str) or rule not in RULES:
        raise ValueError(f"rule must be one of {list(RULES)}, got {rule!r}")
    cls = RULES[rule]
    foreign = [o for o in options if o not in cls.options]
    if foreign:
        hints = []
        for option in foreign:
            owners = [name for name, other in RULES.items() if option in other.options]
            hints.append(f"{option!r} is an option of rule {' / '.join(map(repr, owners))}" if owners
                         else f"{option!r} is not an option of any rule")
        own = ", ".join(cls.options) if cls.options else "no options of its own"
        raise TypeError(f"rule={rule!r} takes {own}; got {', '.join(foreign)} ({'; '.join(hints)})")
    return cls(names, target, strength, **options)
