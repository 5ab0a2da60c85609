"""Decoding adjustment (解码修改): logits processors that balance social groups while the model generates.

Taught in ``notebooks/07_decoding/try.ipynb``. The idea: with two groups (men, women), before each next
token look at how many male and female words have been generated so far and adjust the logits (调整
logits) so that what comes out is balanced. The processors are ``transformers.LogitsProcessor`` objects, so
they plug into ``model.generate(logits_processor=LogitsProcessorList([...]))`` and into
:func:`debias_utils.lm.generate_manual`. ``generate`` applies custom processors *before* temperature,
top-k and top-p (see ``GenerationMixin._get_logits_processor``), so the adjustment sees the full
distribution and truncation acts on the adjusted one (tested in ``tests/test_decoding.py``).

One idea per module:

* :mod:`.tokens` — group words → the single-token ids that can be steered (:func:`group_token_ids`);
* :mod:`.rules` — the five update rules, one class each, in the registry :data:`RULES`, and the closed-form
  KL projection :func:`kl_shift` / :func:`shifted_kl`;
* :mod:`.state` — :class:`BalanceState`, the counts and per-row locks (text in, no tokenizer needed);
* :mod:`.processor` — :class:`GroupBalanceProcessor`, which ties a rule and a state to ``generate``;
* :mod:`.self_debias` — :class:`SelfDebiasProcessor`, the Self-Debiasing baseline of Schick et al. (2021).

Words are counted by :class:`debias_utils.words.WordCounter`, the package's one word counter.
Example: ``from debias_utils.decoding import GroupBalanceProcessor, RULES``.
"""
from .processor import SCOPES, GroupBalanceProcessor
from .rules import (RULES, IntegralRule, KLRule, ProportionalRule, QuotaRule, Rule, StaticRule, build_rule,
                    check_target, kl_shift, shifted_kl)
from .self_debias import SELF_DEBIAS_PREFIX, SelfDebiasProcessor
from .state import BalanceState
from .tokens import group_token_ids, word_variants

__all__ = ["BalanceState", "GroupBalanceProcessor", "IntegralRule", "KLRule", "ProportionalRule", "QuotaRule",
           "RULES", "Rule", "SCOPES", "SELF_DEBIAS_PREFIX", "SelfDebiasProcessor", "StaticRule", "build_rule",
           "check_target", "group_token_ids", "kl_shift", "shifted_kl", "word_variants"]
