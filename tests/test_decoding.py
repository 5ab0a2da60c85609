"""Tests of debias_utils.decoding: the closed forms, then the processors on a fake LM with fixed logits.

The fake LM ignores its input and always returns the same logits, which prefer " he" (about 87 % of
the gendered mass is male), so any balance in its output comes from the processor.
"""
from __future__ import annotations

import math

import pytest
import torch
from transformers import LogitsProcessorList

from debias_utils import set_seed
from debias_utils.decoding import (GroupBalanceProcessor, SelfDebiasProcessor, WordCounter, group_token_ids,
                                   kl_shift, shifted_kl, word_variants)
from debias_utils.lm import generate_manual
from debias_utils.metrics import count_group_words
from debias_utils.models import load_tokenizer

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
    # Per row: the lock recorded by the processor is the group of the row's first group word.
    counter = WordCounter(GROUPS)
    for r, text in enumerate(proc._texts):
        first = counter.first_group(text)
        assert proc._lock[r].item() == (-1 if first is None else proc.names.index(first))


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
    assert proc._lock.tolist() == [1]


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
