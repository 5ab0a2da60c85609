"""Tests of debias_utils.decoding: the closed forms, then the processors on a fake LM with fixed logits.

The fake LM ignores its input and always returns the same logits, which prefer " he" (about 87 % of
the gendered mass is male), so any balance in its output comes from the processor.
"""
from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import torch
from transformers import LogitsProcessorList

from debias_utils import set_seed
from debias_utils.decoding import (RULES, BalanceState, GroupBalanceProcessor, IntegralRule, KLRule,
                                   ProportionalRule, QuotaRule, SelfDebiasProcessor, StaticRule, build_rule,
                                   group_token_ids, kl_shift, shifted_kl, word_variants)
from debias_utils.lm import generate_manual
from debias_utils.metrics import count_group_words
from debias_utils.models import load_tokenizer
from debias_utils.words import WordCounter

GROUPS = {"male": ["he", "him", "his"], "female": ["she", "her"]}
PREFS = {" he": 3.0, " him": 1.5, " she": 1.0, " her": 0.0, " the": 2.5, " went": 2.0, ".": 1.5}
NEUTRAL_PROMPTS = ["The nurse said that", "The pilot went home because", "After work, the chef", "Then"] * 8


class _Out(dict):
    @property
    def logits(self):
        return self["logits"]


class FixedLM(torch.nn.Module):
    """A tiny LM that returns the same next-token logits whatever the input (no KV cache)."""

    def __init__(self, tokenizer, prefs: dict[str, float], floor: float = -30.0):
        super().__init__()
        logits = torch.full((len(tokenizer),), floor)
        for text, value in prefs.items():
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            assert len(ids) == 1, text
            logits[ids[0]] = value
        self.logits = torch.nn.Parameter(logits, requires_grad=False)

    def forward(self, input_ids, attention_mask=None, position_ids=None, use_cache=False, **kwargs):
        return _Out(logits=self.logits.expand(input_ids.shape[0], 1, -1))


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer()


@pytest.fixture(scope="module")
def fake(tok):
    return FixedLM(tok, PREFS)


def tid(tok, text: str) -> int:
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == 1
    return ids[0]


def run(model, tok, proc, prompts=NEUTRAL_PROMPTS, batches: int = 2, new: int = 8, seed: int = 0):
    """Generate ``batches`` batches with generate_manual (sampling) and return the texts."""
    set_seed(seed)
    texts = []
    for _ in range(batches):
        out = generate_manual(model, tok, prompts, max_new_tokens=new, do_sample=True, logits_processor=proc)
        if proc is not None:
            proc.end_batch(out)
        texts += tok.batch_decode(out[:, -new:], skip_special_tokens=True)
    return texts


def male_share_of(texts, groups=GROUPS) -> float:
    counts = count_group_words(texts, groups).sum()
    return counts["male"] / (counts["male"] + counts["female"])


# ---------------------------------------------------------------------------------------------------
# Words, tokens, counting
# ---------------------------------------------------------------------------------------------------

def test_word_variants_leave_out_the_bare_lower_case_form():
    assert word_variants("she") == [" she", " She", "She"]


def test_group_token_ids_split_steerable_and_count_only(tok):
    groups = {"male": ["he", "stepfather"], "female": ["she", "businesswoman"]}
    ids, steerable, count_only = group_token_ids(tok, groups)
    assert tid(tok, " he") in ids["male"] and tid(tok, "He") in ids["male"]
    assert tid(tok, " she") in ids["female"] and tid(tok, " She") in ids["female"]
    assert tok.convert_tokens_to_ids("he") not in ids["male"]   # "t" + "he" = "the"
    assert steerable == {"male": ["he"], "female": ["she"]}
    assert count_only == {"male": ["stepfather"], "female": ["businesswoman"]}


def test_word_counter_agrees_with_metrics_count_group_words():
    texts = ["He said he's fine; his sister nodded.", "The theme: SHE and Her hero.", "nothing here", "herself!"]
    groups = {"male": ["he", "his", "himself"], "female": ["she", "her", "herself", "sister"]}
    counter = WordCounter(groups)
    expected = count_group_words(texts, groups)
    for i, text in enumerate(texts):
        assert counter.count(text) == expected.iloc[i].to_dict()
    assert counter.first_group("The theme: SHE and Her hero.") == "female"
    assert counter.first_group("the other") is None


def test_groups_must_not_share_a_word(tok):
    with pytest.raises(ValueError, match="both group"):
        GroupBalanceProcessor(tok, {"a": ["he"], "b": ["he", "she"]})


def test_bad_arguments_say_what_to_pass(tok):
    with pytest.raises(ValueError, match="boost="):
        GroupBalanceProcessor(tok, GROUPS, rule="static")
    with pytest.raises(ValueError, match="rule must be one of"):
        GroupBalanceProcessor(tok, GROUPS, rule="magic")
    with pytest.raises(ValueError, match="fraction in"):
        GroupBalanceProcessor(tok, GROUPS, rule="kl", strength=2.0)
    with pytest.raises(ValueError, match="at least two groups"):
        GroupBalanceProcessor(tok, {"male": ["he"]})
    with pytest.raises(ValueError, match="target"):
        GroupBalanceProcessor(tok, GROUPS, target={"male": 0.7, "female": 0.7})


@pytest.mark.parametrize("name,value", [(n, v) for n in ("horizon", "clip", "slack", "lock_share", "min_mass")
                                        for v in (math.nan, math.inf, -1.0)])
def test_nan_inf_and_negative_settings_are_refused(tok, name, value):
    rule = {"clip": "integral", "slack": "quota"}.get(name, "kl")
    with pytest.raises(ValueError, match=f"^{name} .*must be"):
        GroupBalanceProcessor(tok, GROUPS, rule=rule, **{name: value})


@pytest.mark.parametrize("strength", [np.float32(0.5), np.float64(0.5), np.int64(0)])
def test_numpy_strengths_are_accepted(tok, strength):
    proc = GroupBalanceProcessor(tok, GROUPS, rule="kl", strength=strength)
    assert proc.strength == float(strength) and type(proc.strength) is float


@pytest.mark.parametrize("strength", [math.nan, math.inf, -0.5, "1", True])
def test_bad_strengths_are_refused(tok, strength):
    with pytest.raises(ValueError, match="strength must be"):
        GroupBalanceProcessor(tok, GROUPS, rule="integral", strength=strength)


def test_an_option_of_another_rule_is_refused_and_names_the_rules_own(tok):
    with pytest.raises(TypeError, match=r"rule='kl' takes horizon, r_min, keep_total; got clip "
                                        r"\('clip' is an option of rule 'integral'\)"):
        GroupBalanceProcessor(tok, GROUPS, rule="kl", clip=3)
    with pytest.raises(TypeError, match="rule='proportional' takes no options of its own; got slack"):
        GroupBalanceProcessor(tok, GROUPS, rule="proportional", slack=1.0)
    with pytest.raises(TypeError, match="'colour' is not an option of any rule"):
        GroupBalanceProcessor(tok, GROUPS, rule="quota", colour="red")


def test_the_registry_builds_the_named_rule(tok):
    assert list(RULES) == ["static", "proportional", "integral", "kl", "quota"] and "kl" in RULES
    assert type(GroupBalanceProcessor(tok, GROUPS).update_rule) is KLRule   # rule="kl" is the default
    for name, cls in RULES.items():
        assert cls.name == name
        # `options` lists exactly the keyword arguments the class adds to the shared ones.
        own = list(inspect.signature(cls.__init__).parameters)[4:]
        assert own == list(cls.options), name
        extra = {"boost": "male"} if name == "static" else {}
        proc = GroupBalanceProcessor(tok, GROUPS, rule=name, **extra)
        assert type(proc.update_rule) is cls and proc.rule == name
    rule = build_rule("kl", ["a", "b"], {"a": 0.25, "b": 0.75}, 0.5, horizon=4.0, keep_total=False)
    assert (rule.horizon, rule.keep_total, rule.strength) == (4.0, False, 0.5)
    assert torch.equal(rule.target, torch.tensor([0.25, 0.75]))
    with pytest.raises(ValueError, match="target"):
        build_rule("kl", ["a", "b"], {"a": math.nan, "b": 0.5})
    with pytest.raises(TypeError, match="keep_total must be True or False"):
        build_rule("kl", ["a", "b"], keep_total="no")


# ---------------------------------------------------------------------------------------------------
# Closed forms
# ---------------------------------------------------------------------------------------------------

def test_kl_shift_reaches_the_target_with_least_kl():
    torch.manual_seed(0)
    probs = torch.softmax(torch.randn(50), 0)
    groups = [torch.arange(0, 5), torch.arange(5, 8)]
    log_mass = torch.stack([probs[g].sum().log() for g in groups])
    target = torch.tensor([0.3, 0.7])
    shift = kl_shift(log_mass, target)
    # Two-group closed form from the docstring.
    eta = math.log(0.3 / 0.7) - float(log_mass[0] - log_mass[1])
    assert torch.allclose(shift, torch.tensor([eta * 0.7, -eta * 0.3]), atol=1e-5)

    def apply(s):
        z = probs.log().clone()
        for k, g in enumerate(groups):
            z[g] += s[k]
        return torch.softmax(z, 0)

    q = apply(shift)
    share = q[groups[0]].sum() / (q[groups[0]].sum() + q[groups[1]].sum())
    assert abs(float(share) - 0.3) < 1e-5
    # Relative odds inside a group and outside the groups are unchanged.
    assert torch.allclose(q[1] / q[0], probs[1] / probs[0], rtol=1e-4)
    assert torch.allclose(q[20] / q[30], probs[20] / probs[30], rtol=1e-4)
    # Every other shift with the same share (common offset c) has a larger KL.
    kl = lambda qq: float((qq * (qq / probs).log()).sum())  # noqa: E731
    best = kl(q)
    for c in (-0.5, -0.1, 0.1, 0.5):
        assert kl(apply(shift + c)) > best
    # The analytic KL from group masses equals the full-vocabulary KL.
    assert abs(float(shifted_kl(log_mass, shift)) - best) < 1e-5


def test_kl_shift_keep_total_holds_the_group_mass():
    log_mass = torch.log(torch.tensor([[0.3, 0.05, 0.1]]))
    target = torch.tensor([[0.2, 0.5, 0.3]])
    shift = kl_shift(log_mass, target, keep_total=True)
    moved = (log_mass + shift).exp()
    assert torch.allclose(moved, target * 0.45, atol=1e-6)      # Q_g = r_g * P_G
    # The share-only projection reaches the same shares with no more KL, but changes the total.
    only = kl_shift(log_mass, target)
    q_only = (log_mass + only).exp()
    assert torch.allclose(q_only / q_only.sum(), target, atol=1e-5)
    assert float(shifted_kl(log_mass, only)) <= float(shifted_kl(log_mass, shift)) + 1e-7
    assert abs(float(q_only.sum()) - 0.45) > 0.01


def test_shifted_kl_handles_masks_and_identity():
    log_mass = torch.log(torch.tensor([[0.4, 0.1]]))
    assert float(shifted_kl(log_mass, torch.zeros(1, 2))) == pytest.approx(0.0, abs=1e-7)
    masked = shifted_kl(log_mass, torch.tensor([[-math.inf, 0.0]]))
    assert float(masked) == pytest.approx(-math.log(0.6), abs=1e-5)   # KL of conditioning on "not male"


# ---------------------------------------------------------------------------------------------------
# Each rule on hand-made tensors (no tokenizer)
# ---------------------------------------------------------------------------------------------------

NAMES = ["male", "female"]
MASS = torch.log(torch.tensor([[0.3, 0.1]]))          # P_male 0.3, P_female 0.1


def test_static_rule_adds_its_strength_to_one_group():
    rule = StaticRule(NAMES, strength=2.0, boost="female")
    counts = torch.tensor([[6.0, 5.0], [0.0, 0.0]])
    assert torch.equal(rule.shift(counts, MASS.repeat(2, 1)), torch.tensor([[0.0, 2.0], [0.0, 2.0]]))


def test_proportional_rule_pushes_against_the_share_error():
    rule = ProportionalRule(NAMES, strength=2.0)
    counts = torch.tensor([[3.0, 1.0], [0.0, 0.0]])          # shares 0.75 / 0.25; no words yet
    assert torch.allclose(rule.shift(counts, MASS.repeat(2, 1)), torch.tensor([[-0.5, 0.5], [0.0, 0.0]]))
    skewed = ProportionalRule(NAMES, {"male": 0.25, "female": 0.75}, strength=1.0)
    assert torch.allclose(skewed.shift(torch.tensor([[3.0, 1.0]]), MASS), torch.tensor([[-0.5, 0.5]]))


def test_integral_rule_pushes_against_the_clipped_count_gap():
    rule = IntegralRule(NAMES, strength=1.0, clip=5.0)
    counts = torch.tensor([[6.0, 5.0], [20.0, 0.0]])         # gaps ±0.5 and ±10 (clipped to 5)
    assert torch.allclose(rule.shift(counts, MASS.repeat(2, 1)), torch.tensor([[-0.5, 0.5], [-5.0, 5.0]]))
    assert torch.allclose(IntegralRule(NAMES, strength=0.5, clip=2.0).shift(counts[1:], MASS),
                          torch.tensor([[-1.0, 1.0]]))


def test_kl_rule_moves_the_masses_to_its_target_share():
    counts = torch.tensor([[6.0, 5.0]])                      # r* = 0.5 + (5.5 - 6) / 2 = 0.25 male
    full = KLRule(NAMES, strength=1.0).shift(counts, MASS)
    # keep_total: Q_g = r*_g * P_G = [0.1, 0.3], so s = log(Q / P)
    assert torch.allclose(full, torch.log(torch.tensor([[0.1 / 0.3, 0.3 / 0.1]])), atol=1e-6)
    assert torch.allclose(KLRule(NAMES, strength=0.5).shift(counts, MASS), 0.5 * full)
    share_only = KLRule(NAMES, keep_total=False).shift(counts, MASS)
    eta = math.log(0.25 / 0.75) - math.log(0.3 / 0.1)
    assert torch.allclose(share_only, torch.tensor([[eta * 0.75, -eta * 0.25]]), atol=1e-6)
    # A large gap is clipped at r_min: r* = [0.02, 1] / 1.02.
    far = KLRule(NAMES, horizon=2.0, r_min=0.02).shift(torch.tensor([[20.0, 0.0]]), MASS)
    assert torch.allclose(far, torch.log(torch.tensor([[0.02 / 1.02 * 0.4 / 0.3, 1 / 1.02 * 0.4 / 0.1]])), atol=1e-6)


def test_quota_rule_holds_back_a_group_over_its_quota():
    counts = torch.tensor([[6.0, 5.0], [0.0, 0.0]])          # male is 0.5 over its quota; no words yet
    half = QuotaRule(NAMES, strength=0.5, slack=0.5).shift(counts, MASS.repeat(2, 1))
    assert torch.allclose(half, torch.tensor([[math.log(0.5), 0.0], [0.0, 0.0]]))
    full = QuotaRule(NAMES, strength=1.0, slack=0.0).shift(counts, MASS.repeat(2, 1))
    assert full[0, 0] == -math.inf and full[0, 1] == 0 and torch.equal(full[1], torch.zeros(2))
    assert torch.equal(QuotaRule(NAMES, strength=1.0, slack=1.0).shift(counts[:1], MASS), torch.zeros(1, 2))


@pytest.mark.parametrize("cls", [KLRule, QuotaRule])
def test_kl_and_quota_strengths_are_fractions(cls):
    assert cls(NAMES, strength=1.0).strength == 1.0
    with pytest.raises(ValueError, match=rf"rule='{cls.name}' strength is a fraction in \[0, 1\]"):
        cls(NAMES, strength=1.5)
    assert ProportionalRule(NAMES, strength=50.0).strength == 50.0   # the others have no upper limit


def test_rules_check_only_their_own_options():
    with pytest.raises(ValueError, match="boost="):
        StaticRule(NAMES, strength=1.0)
    with pytest.raises(ValueError, match="^clip .*must be in"):
        IntegralRule(NAMES, clip=0.0)
    with pytest.raises(ValueError, match="^r_min .*must be in"):
        KLRule(NAMES, r_min=0.5)
    with pytest.raises(ValueError, match="at least two different groups"):
        KLRule(["male"])


# ---------------------------------------------------------------------------------------------------
# BalanceState, driven by text (no tokenizer)
# ---------------------------------------------------------------------------------------------------

def test_state_counts_and_locks_rows_from_text():
    state = BalanceState(GROUPS)
    state.start_batch(["The nurse said that", "The woman said that", "Then"])
    assert state.untouched.tolist() == [False, False, False]   # "woman" is not in GROUPS
    state.start_batch(["The nurse said that", "Then he", "Then"])
    assert state.untouched.tolist() == [False, True, False] and state.rows == 3 + 3
    state.extend([" she said", " she", " he"])
    assert state.texts == [" she said", "", " he"]             # the row left alone is not recorded
    assert state.locks == ["female", None, "male"] and state.lock_ids.tolist() == [1, -1, 0]
    assert state.counts == {"male": 1, "female": 1}
    state.extend([" he", " he", " told"])
    assert state.locks == ["female", None, "male"]             # a row keeps its first group ...
    assert torch.equal(state.row_counts, torch.tensor([[1.0, 1.0], [0.0, 0.0], [1.0, 0.0]]))
    # ... which is recomputed from the whole text: " he" followed by "r" is "her".
    state.start_batch(["Then"])
    state.extend([" he"])
    assert state.locks == ["male"]
    state.extend(["r"])
    assert state.locks == ["female"] and state.counts == {"male": 2, "female": 2}
    with pytest.raises(ValueError, match="one text piece per running row"):
        state.extend(["a", "b"])


def test_state_words_per_row_and_look_ahead():
    state = BalanceState(GROUPS)
    assert state.words_per_row == 1.0                          # before any finished row
    state.start_batch(["A", "B", "C"])
    state.extend([" he and his", " she", " nothing"])
    state.end_batch()
    # Two rows named a group, with 2 + 1 words.
    assert state.words_per_row == 1.5 and state.rows == 3 and state.counts == {"male": 2, "female": 1}
    state.start_batch(["D", "E"])
    state.extend([" she", " he"], finished=[False, True])
    counts, per_row = state.anticipated_counts()
    # Running row D counts as max(1, 1.5) = 1.5 female words; finished row E as its 1 word.
    assert per_row == 1.5 and torch.equal(counts, torch.tensor([2.0 + 1.0, 1.0 + 1.5]))
    assert state.active.tolist() == [True, False] and state.finished.tolist() == [False, True]
    assert state.counts == {"male": 3, "female": 2}


def test_state_observe_end_batch_and_reset():
    state = BalanceState(GROUPS)
    state.observe(["he said", "he and she", "nothing"])
    assert state.counts == {"male": 2, "female": 1} and state.rows == 3
    assert state.words_per_row == 1.5                          # "nothing" named nobody
    state.start_batch(["Then he", "Then"])
    state.extend([" she", " she"])
    assert state.untouched_rows == 1 and state.counts == {"male": 2, "female": 2}
    state.end_batch()
    state.end_batch()                                          # closing twice changes nothing
    assert state.counts == {"male": 2, "female": 2} and state.rows == 5 and state.untouched_rows == 1
    assert state.texts == [] and state.words_per_row == 4 / 3
    with pytest.raises(TypeError, match="not one string"):
        state.observe("he said")
    state.reset()
    assert state.counts == {"male": 0, "female": 0} and state.rows == 0 and state.words_per_row == 1.0


def test_the_processor_adds_the_rules_shift_to_each_group_token(tok, fake):
    proc = GroupBalanceProcessor(tok, GROUPS, rule="integral", strength=0.7)
    proc.observe(["he he he", "she"])
    prompt = tok(["The nurse said that"], return_tensors="pt")["input_ids"]
    scores = fake.logits[None].clone()
    out = proc(prompt, scores.clone())
    log_p = scores.log_softmax(-1)
    ids = group_token_ids(tok, GROUPS)[0]
    log_mass = torch.stack([log_p[0, ids[g]].logsumexp(-1) for g in proc.names])[None]
    shift = proc.update_rule.shift(torch.tensor([[3.0, 1.0]]), log_mass)[0]
    assert torch.allclose(shift, torch.tensor([-0.7, 0.7]))
    expected = scores.clone()
    for k, g in enumerate(proc.names):
        expected[0, ids[g]] += shift[k]
    assert torch.equal(out, expected)


# ---------------------------------------------------------------------------------------------------
# GroupBalanceProcessor on the fake LM
# ---------------------------------------------------------------------------------------------------

def test_fake_lm_prefers_he_without_a_processor(tok, fake):
    share = male_share_of(run(fake, tok, None, batches=1))
    assert share > 0.8


@pytest.mark.parametrize("rule", ["static", "proportional", "integral", "kl", "quota"])
def test_strength_zero_is_the_identity(tok, fake, rule):
    extra = {"boost": "female"} if rule == "static" else {}
    prompts = NEUTRAL_PROMPTS[:4]
    plain = run(fake, tok, None, prompts=prompts, batches=1, new=6)
    proc = GroupBalanceProcessor(tok, GROUPS, rule=rule, strength=0.0, **extra)
    assert run(fake, tok, proc, prompts=prompts, batches=1, new=6) == plain
    scores = torch.randn(2, len(tok))
    assert torch.equal(proc(torch.tensor([[5, 6], [7, 8]]), scores), scores)
    assert proc.stats()["intervened_steps"] == 0


# (rule, strength, extra arguments). "static" is open-loop: it balances only with a bias tuned by hand to
# this model (log P_male / P_female), and only per word, hence scope="sequence" (no per-row lock).
_BIAS = math.log((math.exp(3.0) + math.exp(1.5)) / (math.exp(1.0) + math.exp(0.0)))
RULE_SETTINGS = [
    ("static", _BIAS, {"boost": "female", "scope": "sequence"}),
    ("proportional", 50.0, {}),
    ("integral", 1.0, {}),
    ("kl", 1.0, {}),
    ("quota", 1.0, {}),
]


@pytest.mark.parametrize("rule,strength,extra", RULE_SETTINGS, ids=[r[0] for r in RULE_SETTINGS])
def test_every_rule_balances_a_model_that_prefers_he(tok, fake, rule, strength, extra):
    proc = GroupBalanceProcessor(tok, GROUPS, rule=rule, strength=strength, **extra)
    texts = run(fake, tok, proc)
    share = male_share_of(texts)
    assert abs(share - 0.5) <= 0.05, share
    stats = proc.stats()
    assert stats["rows"] == 2 * len(NEUTRAL_PROMPTS)
    assert 0 < stats["intervention_rate"] <= 1 and stats["mean_kl"] > 0
    # The processor's own counts are the metric's counts.
    assert stats["counts"] == count_group_words(texts, GROUPS).sum().to_dict()


def test_kl_rule_works_with_three_groups(tok):
    groups = dict(GROUPS, neutral=["they", "them"])
    lm = FixedLM(tok, dict(PREFS, **{" they": 0.5}))
    proc = GroupBalanceProcessor(tok, groups, rule="kl")
    counts = count_group_words(run(lm, tok, proc), groups).sum()
    shares = counts / counts.sum()
    assert all(abs(s - 1 / 3) < 0.07 for s in shares), shares.to_dict()


def test_corpus_scope_locks_each_row_to_its_first_group(tok, fake):
    # lock_share=1: a row never switches group; both groups still appear across rows of one batch.
    proc = GroupBalanceProcessor(tok, GROUPS, rule="kl", lock_share=1.0)
    texts = run(fake, tok, proc, batches=1, new=10)
    counts = count_group_words(texts, GROUPS)
    assert ((counts["male"] == 0) | (counts["female"] == 0)).all()
    assert (counts["male"] > 0).sum() >= 8 and (counts["female"] > 0).sum() >= 8
    # Per row, while a batch runs: the state holds the row's text and its lock is the row's first group word.
    counter = WordCounter(GROUPS)
    out = generate_manual(fake, tok, NEUTRAL_PROMPTS, max_new_tokens=10, do_sample=True, logits_processor=proc)
    seen = tok.batch_decode(out[:, -10:-1], skip_special_tokens=True)   # proc never sees the last token
    assert proc.state.texts == seen
    assert proc.state.locks == [counter.first_group(text) for text in seen]
    assert {"male", "female"} <= set(proc.state.locks)


def test_sequence_scope_mixes_groups_inside_a_text(tok, fake):
    proc = GroupBalanceProcessor(tok, GROUPS, rule="kl", scope="sequence")
    counts = count_group_words(run(fake, tok, proc, batches=1, new=10), GROUPS)
    assert ((counts["male"] > 0) & (counts["female"] > 0)).mean() > 0.5


def test_no_row_is_ever_fully_masked(tok):
    # Only male tokens are possible; quota wants to mask them and lock_share=1 masks the other group.
    only_male = FixedLM(tok, {" he": 1.0, " him": 0.5}, floor=-math.inf)
    for rule, extra in [("quota", {"slack": 0.0}), ("kl", {"lock_share": 1.0}), ("static", {"boost": "female"})]:
        proc = GroupBalanceProcessor(tok, GROUPS, rule=rule, strength=1.0, **extra)
        set_seed(0)
        out = generate_manual(only_male, tok, ["The nurse said that"] * 3, max_new_tokens=6, do_sample=True,
                              logits_processor=LogitsProcessorList([proc]))
        assert set(out[:, -6:].flatten().tolist()) <= {tid(tok, " he"), tid(tok, " him")}
    # Directly: scores whose only finite entries belong to an over-quota group stay finite.
    proc = GroupBalanceProcessor(tok, GROUPS, rule="quota", slack=0.0)
    prompt = tok(["The nurse said that"], return_tensors="pt")["input_ids"]
    scores = only_male.logits[None].clone()
    proc(prompt, scores)
    step = torch.cat([prompt, torch.tensor([[tid(tok, " he")]])], 1)
    out = proc(step, scores)
    assert torch.isfinite(out).any() and not torch.isnan(out).any()


def test_multi_token_words_are_counted(tok):
    groups = {"male": ["he", "stepfather"], "female": ["she", "businesswoman"]}
    proc = GroupBalanceProcessor(tok, groups)
    assert proc.count_only["female"] == ["businesswoman"]
    prompt = tok(["The meeting began and"], return_tensors="pt")["input_ids"]
    word = tok(" the businesswoman spoke", add_special_tokens=False)["input_ids"]
    assert len(word) > 3
    scores = torch.zeros(1, len(tok))
    ids = prompt
    proc(ids, scores)
    for t in word:   # one token per step, as generate does
        ids = torch.cat([ids, torch.tensor([[t]])], 1)
        proc(ids, scores)
    assert proc.counts == {"male": 0, "female": 1}
    assert proc.state.locks == ["female"]


def test_prompts_naming_a_group_are_left_alone(tok, fake):
    prompts = ["The woman who worked as a nurse said that", "The nurse said that"]
    proc = GroupBalanceProcessor(tok, rule="kl")   # the course's GENDER_WORDS, which include "woman"
    batch = tok(prompts, return_tensors="pt", padding=True)["input_ids"]
    scores = fake.logits[None].repeat(2, 1)
    out = proc(batch, scores.clone())
    assert torch.equal(out[0], scores[0])          # names a group: untouched
    assert not torch.equal(out[1], scores[1])      # neutral: balanced
    # Its words are not counted either.
    step = torch.cat([batch, torch.tensor([[tid(tok, " she")], [tid(tok, " he")]])], 1)
    out = proc(step, scores.clone())
    assert torch.equal(out[0], scores[0])
    assert proc.counts == {"male": 1, "female": 0}
    assert proc.stats()["untouched_rows"] == 1


def test_new_batches_are_detected_and_counts_accumulate(tok, fake):
    proc = GroupBalanceProcessor(tok, GROUPS, rule="kl")
    texts = run(fake, tok, proc, prompts=NEUTRAL_PROMPTS[:4], batches=3, new=5)
    assert proc.stats()["rows"] == 12
    assert proc.counts == count_group_words(texts, GROUPS).sum().to_dict()
    proc.reset()
    assert proc.counts == {"male": 0, "female": 0} and proc.stats()["rows"] == 0


# ---------------------------------------------------------------------------------------------------
# Inside model.generate (the tiny random Llama)
# ---------------------------------------------------------------------------------------------------

def test_processor_acts_before_top_k_in_generate(tiny):
    model, tok = tiny
    female = set(group_token_ids(tok, GROUPS)[0]["female"])
    batch = tok(["The nurse said that", "Then"], return_tensors="pt", padding=True)
    # Without the processor, top_k=1 keeps the random model's argmax: no female token.
    set_seed(0)
    plain = model.generate(**batch, max_new_tokens=4, do_sample=True, top_k=1, pad_token_id=tok.pad_token_id)
    assert not set(plain[:, -4:].flatten().tolist()) & female
    # With a large static bias the female tokens top the list *before* top-k keeps one token.
    proc = GroupBalanceProcessor(tok, GROUPS, rule="static", boost="female", strength=100.0, min_mass=0.0,
                                 scope="sequence")
    set_seed(0)
    out = model.generate(**batch, max_new_tokens=4, do_sample=True, top_k=1, pad_token_id=tok.pad_token_id,
                         logits_processor=LogitsProcessorList([proc]))
    assert set(out[:, -4:].flatten().tolist()) <= female


def test_generate_and_generate_manual_agree_with_the_processor(tiny):
    model, tok = tiny
    prompts = ["The nurse said that", "The pilot went home because"]
    kwargs = dict(rule="kl", min_mass=0.0)
    proc_a, proc_b = GroupBalanceProcessor(tok, GROUPS, **kwargs), GroupBalanceProcessor(tok, GROUPS, **kwargs)
    batch = tok(prompts, return_tensors="pt", padding=True)
    set_seed(0)
    a = model.generate(**batch, max_new_tokens=6, do_sample=True, top_k=0, top_p=1.0,
                       pad_token_id=tok.pad_token_id, logits_processor=LogitsProcessorList([proc_a]))
    set_seed(0)
    b = generate_manual(model, tok, prompts, max_new_tokens=6, do_sample=True, logits_processor=proc_b)
    assert torch.equal(a, b)
    assert proc_a.stats()["intervened_steps"] == proc_b.stats()["intervened_steps"] > 0


# ---------------------------------------------------------------------------------------------------
# SelfDebiasProcessor
# ---------------------------------------------------------------------------------------------------

def test_self_debias_follows_the_formula_step_after_step(tiny):
    model, tok = tiny
    prefix = "Biased text:\n"
    proc = SelfDebiasProcessor(model, tok, prefix=prefix, decay=50.0, epsilon=0.01)
    prompts = ["The nurse said that", "Then"]
    ids = tok(prompts, return_tensors="pt", padding=True)["input_ids"]

    def expected(ids):
        plain, biased = [], []
        for row in ids.tolist():
            row = row[next(i for i, t in enumerate(row) if t != tok.pad_token_id):]
            plain.append(model(input_ids=torch.tensor([row])).logits[0, -1].float())
            prefixed = tok(prefix, add_special_tokens=False)["input_ids"] + row
            biased.append(model(input_ids=torch.tensor([prefixed])).logits[0, -1].float())
        p, pb = torch.stack(plain).softmax(-1), torch.stack(biased).softmax(-1)
        alpha = torch.clamp(torch.exp(-50.0 * (pb - p).clamp(min=0)), min=0.01)
        return torch.stack(plain), (p * alpha) / (p * alpha).sum(-1, keepdim=True)

    with torch.no_grad():
        for step in range(3):   # the first call builds the cache; later calls reuse it
            scores, want = expected(ids)
            got = proc(ids, scores).softmax(-1)
            assert torch.allclose(got, want, atol=1e-5), step
            ids = torch.cat([ids, torch.tensor([[11], [12]])], 1)
    assert proc.stats()["steps"] == 6 and proc.stats()["mean_kl"] >= 0


def test_self_debias_runs_inside_generate(tiny):
    model, tok = tiny
    proc = SelfDebiasProcessor(model, tok)
    batch = tok(["The nurse said that", "Then"], return_tensors="pt", padding=True)
    out = model.generate(**batch, max_new_tokens=3, do_sample=False, pad_token_id=tok.pad_token_id,
                         logits_processor=LogitsProcessorList([proc]))
    assert out.shape == (2, batch["input_ids"].shape[1] + 3)
    assert proc.stats()["steps"] == 6
