"""Tests of debias_utils.metrics against hand-computed values."""
import functools
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from debias_utils import metrics as M
from debias_utils.groups import CROWS_STYLE_PAIRS, OCCUPATIONS
from debias_utils.lm import sequence_logprob

# Three groups of unequal size: A (mean 0.8), B (one score, 0.2), C (mean 0.4).
SCORES = [0.9, 0.7, 0.2, 0.3, 0.5, 0.4]
GROUPS = ["A", "A", "B", "C", "C", "C"]


# ---------------------------------------------------------------------------------------------------
# group metrics
# ---------------------------------------------------------------------------------------------------

def test_group_disparity_hand_computed():
    # mean of group means = (0.8 + 0.2 + 0.4) / 3 = 0.4667 -> 0.3333 + 0.2667 + 0.0667
    assert M.group_disparity(SCORES, GROUPS) == pytest.approx(2 / 3)
    # sample mean = 3.0 / 6 = 0.5 -> 0.3 + 0.3 + 0.1
    assert M.group_disparity(SCORES, GROUPS, reference="sample_mean") == pytest.approx(0.7)


def test_group_disparity_references_agree_for_equal_sizes():
    s, g = [0.1, 0.3, 0.6, 0.8], ["x", "x", "y", "y"]
    # means 0.2 and 0.7, centre 0.45 -> 0.25 + 0.25
    assert M.group_disparity(s, g) == pytest.approx(0.5)
    assert M.group_disparity(s, g, reference="sample_mean") == pytest.approx(0.5)
    assert M.group_disparity([0.3, 0.3, 0.3], ["a", "b", "c"]) == 0.0


def test_gap_and_ratio():
    assert M.max_min_gap(SCORES, GROUPS) == pytest.approx(0.6)
    assert M.min_max_ratio(SCORES, GROUPS) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="non-negative"):
        M.min_max_ratio([-0.5, 0.5], ["a", "b"])
    with pytest.raises(ValueError, match="0/0"):
        M.min_max_ratio([0.0, 0.0], ["a", "b"])


@pytest.mark.parametrize("func", [M.group_disparity, M.max_min_gap, M.min_max_ratio, M.group_means])
def test_group_metrics_reject_bad_input(func):
    with pytest.raises(ValueError, match="empty"):
        func([], [])
    with pytest.raises(ValueError, match="is nan"):
        func([0.1, float("nan")], ["a", "b"])
    with pytest.raises(ValueError, match="got 3 scores but 2 groups"):
        func([0.1, 0.2, 0.3], ["a", "b"])
    with pytest.raises(ValueError, match="missing"):
        func([0.1, 0.2], ["a", None])
    with pytest.raises(TypeError, match="single string"):
        func([0.1, 0.2], "ab")


def test_group_disparity_rejects_unknown_reference():
    with pytest.raises(ValueError, match="reference="):
        M.group_disparity(SCORES, GROUPS, reference="median")


def test_group_means_t_interval_hand_computed():
    table = M.group_means([0.9, 0.7, 0.3, 0.5, 0.4], list("AACCC"))
    assert list(table.index) == ["A", "C"]
    a = table.loc["A"]
    assert (a.n, a["mean"]) == (2, pytest.approx(0.8))
    # t(0.975, df=1) = 12.7062; sd = 0.141421; half-width = 12.7062 * 0.141421 / sqrt(2) = 1.27062
    assert a.low == pytest.approx(0.8 - 1.27062, abs=1e-4)
    assert a.high == pytest.approx(0.8 + 1.27062, abs=1e-4)
    c = table.loc["C"]
    # sd = 0.1, t(0.975, 2) = 4.30265 -> half-width 0.248414
    assert c.low == pytest.approx(0.4 - 0.248414, abs=1e-5)
    with pytest.raises(ValueError, match="one score"):
        M.group_means(SCORES, GROUPS)  # group B has one score


def test_group_means_bootstrap_handles_one_element_groups():
    table = M.group_means(SCORES, GROUPS, method="bootstrap")
    assert table.loc["B", "low"] == table.loc["B", "high"] == pytest.approx(0.2)
    assert 0.7 <= table.loc["A", "low"] < 0.8 < table.loc["A", "high"] <= 0.9


def test_bootstrap_ci_brackets_the_value_and_is_reproducible():
    rng = np.random.default_rng(1)
    scores = np.concatenate([rng.normal(0.3, 0.1, 200), rng.normal(0.5, 0.1, 100)]).clip(0, 1)
    groups = ["a"] * 200 + ["b"] * 100
    est = M.bootstrap_ci(M.group_disparity, scores, groups, n_resamples=500)
    assert est.low < est.value < est.high
    assert est.value == pytest.approx(M.group_disparity(scores, groups))
    # The two group means differ by about 0.2, so D = 2 * 0.1 and the interval is narrow around it.
    assert 0.15 < est.low and est.high < 0.25
    assert M.bootstrap_ci(M.group_disparity, scores, groups, n_resamples=500) == est
    assert M.bootstrap_ci(M.group_disparity, scores, groups, n_resamples=500, seed=1) != est
    value, low, high = est
    assert (value, low, high) == (est.value, est.low, est.high)


@pytest.mark.parametrize("statistic", [M.group_disparity, M.max_min_gap, M.min_max_ratio,
                                       functools.partial(M.group_disparity, reference="sample_mean")])
def test_bootstrap_fast_path_equals_generic_path(statistic):
    rng = np.random.default_rng(2)
    scores = rng.random(90)
    groups = rng.choice(["x", "y", "z"], 90)
    fast = M.bootstrap_ci(statistic, scores, groups, n_resamples=200)
    generic = M.bootstrap_ci(lambda s, g: statistic(s, g), scores, groups, n_resamples=200)
    assert fast.value == pytest.approx(generic.value)
    assert fast.low == pytest.approx(generic.low, abs=1e-12)
    assert fast.high == pytest.approx(generic.high, abs=1e-12)


def test_bootstrap_ci_bca_and_single_group():
    rng = np.random.default_rng(3)
    scores, groups = rng.random(60), ["a"] * 30 + ["b"] * 30
    est = M.bootstrap_ci(M.max_min_gap, scores, groups, n_resamples=300, method="BCa")
    assert est.low < est.value < est.high
    overall = M.bootstrap_ci(np.mean, scores, n_resamples=300)
    assert overall.value == pytest.approx(scores.mean())
    assert overall.low < scores.mean() < overall.high


def test_bootstrap_ci_one_element_groups():
    with pytest.warns(UserWarning, match=r"\['B'\] have one score"):
        est = M.bootstrap_ci(M.group_disparity, SCORES, GROUPS, n_resamples=200)
    assert est.low <= est.value <= est.high
    with pytest.raises(ValueError, match="single score"):
        M.bootstrap_ci(M.group_disparity, [0.1, 0.2], ["a", "b"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="BCa' needs at least 2"):
            M.bootstrap_ci(M.group_disparity, SCORES, GROUPS, method="BCa")


def test_bootstrap_ci_rejects_bad_arguments():
    with pytest.raises(TypeError, match="function"):
        M.bootstrap_ci(0.5, SCORES, GROUPS)
    with pytest.raises(ValueError, match="method="):
        M.bootstrap_ci(M.group_disparity, SCORES, GROUPS, method="normal")
    with pytest.raises(ValueError, match="confidence"):
        M.bootstrap_ci(M.group_disparity, SCORES, GROUPS, confidence=95)
    with pytest.raises(ValueError, match="empty"):
        M.bootstrap_ci(M.group_disparity, [], [])


# ---------------------------------------------------------------------------------------------------
# generated-text metrics
# ---------------------------------------------------------------------------------------------------

def test_toxicity_metrics_hand_computed():
    scores = [0.1, 0.7, 0.2, 0.3, 0.9, 0.5]
    prompts = ["p", "p", "q", "q", "r", "r"]
    assert M.max_per_prompt(scores, prompts).to_dict() == {"p": 0.7, "q": 0.3, "r": 0.9}
    assert M.expected_maximum_toxicity(scores, prompts) == pytest.approx((0.7 + 0.3 + 0.9) / 3)
    assert M.toxicity_probability(scores, prompts) == pytest.approx(2 / 3)
    assert M.toxicity_probability(scores, prompts, threshold=0.8) == pytest.approx(1 / 3)
    assert M.toxic_fraction(scores) == pytest.approx(3 / 6)  # 0.5 counts as toxic (>=)
    # Unequal numbers of continuations per prompt are fine.
    assert M.expected_maximum_toxicity([0.2, 0.4, 0.6], [0, 0, 1]) == pytest.approx(0.5)


def test_toxicity_metrics_reject_bad_input():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        M.toxic_fraction([0.2, 1.5])
    with pytest.raises(ValueError, match="is nan"):
        M.expected_maximum_toxicity([0.2, float("nan")], [0, 1])
    with pytest.raises(ValueError, match="got 2 scores but 1 prompt_ids"):
        M.toxicity_probability([0.2, 0.3], [0])
    with pytest.raises(ValueError, match="empty"):
        M.toxic_fraction([])


def test_count_group_words_matches_whole_words_case_insensitively():
    texts = ["He met his sister.", "Mr. Smith and MRS. Jones were here, there and everywhere.",
             "She's the heir; they left.", ""]
    counts = M.count_group_words(texts)
    assert list(counts.columns) == ["male", "female"]
    assert counts.to_dict("list") == {"male": [2, 1, 0, 0], "female": [1, 1, 1, 0]}
    custom = M.count_group_words(["the young person and the old man"], {"young": ["young person"], "old": ["old"]})
    assert custom.iloc[0].to_dict() == {"young": 1, "old": 1}
    with pytest.raises(TypeError, match="not one string"):
        M.count_group_words("He said")
    with pytest.raises(ValueError, match="empty"):
        M.count_group_words([])


def test_demographic_representation_and_male_share():
    assert M.demographic_representation({"male": 3, "female": 1}) == pytest.approx(0.25)
    assert M.demographic_representation({"male": 2, "female": 2}) == 0.0
    # 3 groups, p = (.25, .25, .5): 0.5 * (1/12 + 1/12 + 1/6) = 1/6; one group only: 1 - 1/3
    assert M.demographic_representation({"a": 1, "b": 1, "c": 2}) == pytest.approx(1 / 6)
    assert M.demographic_representation({"a": 0, "b": 0, "c": 5}) == pytest.approx(2 / 3)
    counts = M.count_group_words(["he and he", "she"])
    assert M.demographic_representation(counts) == pytest.approx(0.5 * (abs(2 / 3 - .5) + abs(1 / 3 - .5)))
    assert M.male_share(counts) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="no group words"):
        M.demographic_representation({"male": 0, "female": 0})
    with pytest.raises(ValueError, match="at least 2 groups"):
        M.demographic_representation({"male": 3})
    with pytest.raises(ValueError, match="'male' and 'female'"):
        M.male_share({"young": 1, "old": 2})


def test_sentiment_and_shares():
    values = M.sentiment(["What a wonderful, happy day!", "This is a terrible, awful disaster.",
                          "The table is in the room."])
    assert values[0] > 0.5 and values[1] < -0.5 and values[2] == 0.0
    shares = M.sentiment_shares([0.8, -0.6, 0.0, 0.1], list("AABB"))
    assert shares.loc["A"].to_dict() == {"n": 2, "positive": 0.5, "negative": 0.5}
    assert shares.loc["B", "positive"] == 0.0
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        M.sentiment_shares([2.0, 0.0], list("AB"))


def test_distinct_n():
    assert M.distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)
    assert M.distinct_n(["a b a b"], 1) == pytest.approx(2 / 4)
    assert M.distinct_n(["The cat.", "the cat."], 1) == pytest.approx(3 / 6)
    with pytest.raises(ValueError, match="no 3-grams"):
        M.distinct_n(["a b"], 3)


# ---------------------------------------------------------------------------------------------------
# probability-based probes
# ---------------------------------------------------------------------------------------------------

def test_proportion_estimate():
    est, p = M.proportion_estimate(60, 100)
    assert est.value == 0.6
    assert est.low == pytest.approx(0.4972, abs=1e-3) and est.high == pytest.approx(0.6967, abs=1e-3)
    assert p == pytest.approx(0.0569, abs=1e-3)
    with pytest.raises(ValueError):
        M.proportion_estimate(5, 0)


def test_crows_pairs_score_counts_sent_more_preferred(tiny):
    model, tok = tiny
    result = M.crows_pairs_score(model, tok, CROWS_STYLE_PAIRS, batch_size=16)
    pairs = result.pairs
    direct = sequence_logprob(model, tok, pairs.sent_more.tolist()[:4])
    assert np.allclose(pairs.logprob_more.iloc[:4], direct, atol=1e-4)
    assert (pairs.prefers_more == (pairs.logprob_more > pairs.logprob_less)).all()
    assert result.score.value == pytest.approx(pairs.prefers_more.mean())
    assert result.by_type.n.sum() == 40 and set(result.by_type.index) == {"gender", "age", "religion",
                                                                          "race-color", "disability"}
    g = pairs[pairs.bias_type == "gender"].prefers_more.mean()
    assert result.by_type.loc["gender", "score"] == pytest.approx(g)
    assert result.score.low <= result.score.value <= result.score.high
    normalised = M.crows_pairs_score(model, tok, CROWS_STYLE_PAIRS[:10], length_normalised=True)
    first = pairs.iloc[:10]
    expect = first.logprob_more / first.n_tokens_more > first.logprob_less / first.n_tokens_less
    assert (normalised.pairs.prefers_more == expect).all()
    again = M.crows_summary(first.assign(prefers_more=expect))
    assert again[0] == normalised.score


def test_crows_pairs_score_direction_on_the_real_model(smollm2):
    model, tok = smollm2
    # sent_more is fluent, sent_less is scrambled: any real LM prefers sent_more.
    pairs = [{"sent_more": "The cat sat on the mat.", "sent_less": "Mat the on sat cat the.",
              "stereo_antistereo": "stereo", "bias_type": "test"},
             {"sent_more": "I drank a cup of tea.", "sent_less": "Tea of cup a drank I.",
              "stereo_antistereo": "antistereo", "bias_type": "test"}]
    result = M.crows_pairs_score(model, tok, pairs)
    assert result.score.value == 1.0
    swapped = [dict(p, sent_more=p["sent_less"], sent_less=p["sent_more"]) for p in pairs]
    assert M.crows_pairs_score(model, tok, swapped).score.value == 0.0
    with pytest.raises(ValueError, match="lacks column"):
        M.crows_pairs_score(model, tok, [{"sent_more": "a"}])


def test_pronoun_probabilities(tiny):
    model, tok = tiny
    table = M.pronoun_probabilities(model, tok, ["nurse", "carpenter", "lawyer"],
                                    ["The {occupation} said that", "The {occupation} went home because"])
    assert len(table) == 6
    assert table.share_women.tolist()[:2] == [OCCUPATIONS["nurse"]] * 2
    row = table.iloc[0]
    assert row.prompt == "The nurse said that"
    p_he = math.exp(sequence_logprob(model, tok, [" he"], ["The nurse said that"])[0])
    assert row.p_he == pytest.approx(p_he, rel=1e-4)
    assert row.he_share == pytest.approx(row.p_he / (row.p_he + row.p_she))
    assert ((table.he_share > 0) & (table.he_share < 1)).all()
    own = M.pronoun_probabilities(model, tok, {"wizard": 0.3}, ["The {occupation} said that"])
    assert own.share_women.tolist() == [0.3]
    with pytest.raises(ValueError, match="no share of women"):
        M.pronoun_probabilities(model, tok, ["wizard"])
    with pytest.raises(ValueError, match="slot"):
        M.pronoun_probabilities(model, tok, ["nurse"], ["The nurse said that"])


def test_pronoun_correlation_hand_computed():
    table = pd.DataFrame({"occupation": ["a", "a", "b", "c", "d"], "he_share": [0.2, 0.4, 0.5, 0.6, 0.9],
                          "share_women": [0.9, 0.9, 0.6, 0.5, 0.1]})
    out = M.pronoun_correlation(table)
    she = np.array([0.7, 0.5, 0.4, 0.1])  # occupation a averages to he_share 0.3
    women = np.array([0.9, 0.6, 0.5, 0.1])
    assert out["n_occupations"] == 4
    assert out["pearson_r"] == pytest.approx(np.corrcoef(she, women)[0, 1])
    assert out["spearman_rho"] == pytest.approx(1.0)
    assert out["mean_he_share"] == pytest.approx((0.3 + 0.5 + 0.6 + 0.9) / 4)
    with pytest.raises(ValueError, match="at least 3"):
        M.pronoun_correlation(table.iloc[:3])


# ---------------------------------------------------------------------------------------------------
# WEAT
# ---------------------------------------------------------------------------------------------------

def test_weat_from_vectors_hand_computed():
    x, y, a, b = [[1, 0], [1, 1]], [[0, 1]], [[1, 0]], [[0, 1]]
    # s(x1) = 1 - 0, s(x2) = .707 - .707 = 0, s(y1) = 0 - 1; effect = (0.5 - (-1)) / std([1, 0, -1]) = 1.5
    result = M.weat_from_vectors(x, y, a, b, n_permutations=5000)
    assert result.effect_size == pytest.approx(1.5)
    # Of the 3 ways to pick 2 of {1, 0, -1} as "x", only the observed one reaches the statistic 2.
    assert result.p_value == pytest.approx(1 / 3, abs=0.03)
    assert M.weat_from_vectors(y, x, a, b).effect_size == pytest.approx(-1.5)
    # Scaling a vector does not change cosine similarities.
    assert M.weat_from_vectors([[5, 0], [2, 2]], y, a, b).effect_size == pytest.approx(1.5)


def test_weat_from_vectors_rejects_bad_input():
    with pytest.raises(ValueError, match="zero vector"):
        M.weat_from_vectors([[0, 0], [1, 0]], [[0, 1]], [[1, 0]], [[0, 1]])
    with pytest.raises(ValueError, match="same dimension"):
        M.weat_from_vectors([[1, 0], [1, 1]], [[0, 1, 0]], [[1, 0]], [[0, 1]])
    with pytest.raises(ValueError, match="NaN"):
        M.weat_from_vectors([[np.nan, 0], [1, 1]], [[0, 1]], [[1, 0]], [[0, 1]])
    with pytest.raises(ValueError, match="non-empty"):
        M.weat_from_vectors([], [[0, 1]], [[1, 0]], [[0, 1]])
    with pytest.raises(ValueError, match="at least 3"):
        M.weat_from_vectors([[1, 0]], [[0, 1]], [[1, 0]], [[0, 1]])


def test_word_and_sentence_embeddings(tiny):
    model, tok = tiny
    vectors = M.word_embeddings(model, tok, ["caress", "he"])
    ids = tok(" caress", add_special_tokens=False)["input_ids"]
    assert len(ids) == 2
    table = model.get_input_embeddings().weight.detach().float().numpy()
    assert np.allclose(vectors[0], table[ids].mean(axis=0), atol=1e-6)
    one = M.sentence_embeddings(model, tok, ["This is John."])
    batch = M.sentence_embeddings(model, tok, ["A much longer sentence than the other one.", "This is John."])
    assert one.shape == (1, model.config.hidden_size)
    assert np.allclose(batch[1], one[0], atol=1e-4)  # padding does not change a sentence's vector


def test_weat_on_a_model(tiny):
    model, tok = tiny
    x, y, a, b = ["rose", "tulip", "daisy"], ["ant", "wasp", "flea"], ["love", "peace"], ["death", "filth"]
    word = M.weat(model, tok, x, y, a, b, n_permutations=200)
    direct = M.weat_from_vectors(*(M.word_embeddings(model, tok, s) for s in (x, y, a, b)), n_permutations=200)
    assert word == direct
    swapped = M.weat(model, tok, y, x, a, b, n_permutations=200)   # swapping the targets flips the sign
    assert swapped.effect_size == pytest.approx(-word.effect_size)
    sentence = M.weat(model, tok, x, y, a, b, n_permutations=200, level="sentence", templates=["This is {word}."])
    by_hand = M.weat_from_vectors(*(M.sentence_embeddings(model, tok, [f"This is {w}." for w in s])
                                    for s in (x, y, a, b)), n_permutations=200)
    assert sentence == by_hand and sentence.effect_size != word.effect_size
    with pytest.raises(ValueError, match="level="):
        M.weat(model, tok, x, y, a, b, level="token")


def test_disparity_within_axes_sums_per_axis_disparities():
    scores = [0.2, 0.4, 0.1, 0.1, 0.3, 0.5]
    groups = ["man", "woman", "young", "old", "man", "woman"]
    # gender: man mean 0.25, woman mean 0.45 -> D 0.2; age: young 0.1, old 0.1 -> D 0
    assert M.disparity_within_axes(scores, groups) == pytest.approx(0.2)
    # pooling the four groups into one D would give a different (wrong) number
    assert M.group_disparity(scores, groups) != pytest.approx(0.2)
    # an explicit mapping works for any group names
    assert M.disparity_within_axes([1.0, 0.0, 0.5, 0.5], list("abcd"),
                                   axis_of={"a": "x", "b": "x", "c": "y", "d": "y"}) == pytest.approx(1.0)


def test_disparity_within_axes_bootstraps_and_rejects_unknown_groups():
    rng = np.random.default_rng(0)
    groups = ["man"] * 20 + ["woman"] * 20 + ["young"] * 20 + ["old"] * 20
    scores = np.concatenate([rng.uniform(0, 0.2, 20), rng.uniform(0.4, 0.6, 20), rng.uniform(0, 1, 40)])
    est = M.bootstrap_ci(M.disparity_within_axes, scores, groups, n_resamples=200)
    assert est.low <= est.value <= est.high and est.value > 0.3
    with pytest.raises(ValueError, match="axis_of"):
        M.disparity_within_axes([0.1, 0.2], ["man", "martian"])


def test_male_share_ci_resamples_texts_and_counts_words():
    texts = ["He said he was late.", "She smiled.", "The weather was fine.", "His brother and her sister came."]
    share, n = M.male_share_ci(texts, n_resamples=200)
    # male words: he, he, his, brother = 4; female: she, her, sister = 3
    assert n == 7 and share.value == pytest.approx(4 / 7)
    assert 0 <= share.low <= share.value <= share.high <= 1 and share.high - share.low > 0.1
    assert M.male_share_ci(texts, n_resamples=200) == (share, n)   # seeded: reproducible


def test_male_share_ci_rejects_text_without_gendered_words():
    with pytest.raises(ValueError, match="no group words were found"):
        M.male_share_ci(["The weather was fine."])
    with pytest.raises(ValueError, match="empty"):
        M.male_share_ci([])


@pytest.mark.parametrize("metric", [M.group_disparity, M.max_min_gap, M.min_max_ratio])
def test_a_single_group_is_refused_not_reported_as_no_disparity(metric):
    with pytest.raises(ValueError, match="one group 'women'.*at least two groups"):
        metric([0.2, 0.4, 0.9], ["women"] * 3)
    with pytest.raises(ValueError, match="at least two groups"):
        M.bootstrap_ci(metric, [0.2, 0.4, 0.9], ["women"] * 3)


def test_disparity_within_axes_refuses_an_axis_with_one_group():
    with pytest.raises(ValueError, match="axis 'age' has scores of one group only \\('old'\\)"):
        M.disparity_within_axes([0.1, 0.3, 0.2, 0.4], ["man", "woman", "old", "old"])


def test_toxicity_summary_matches_the_metrics_it_summarises():
    scores = np.array([0.9, 0.1, 0.2, 0.05, 0.6, 0.7, 0.0, 0.3])
    groups = ["man", "man", "man", "man", "woman", "woman", "woman", "woman"]
    prompts = [0, 0, 1, 1, 2, 2, 3, 3]
    out = M.toxicity_summary(scores, groups, prompts, n_resamples=200)
    assert out["D"].value == pytest.approx(M.group_disparity(scores, groups))   # |0.3125 - 0.4| * 2
    assert out["D"] == M.bootstrap_ci(M.group_disparity, scores, groups, n_resamples=200)
    # per-prompt maxima 0.9, 0.2, 0.7, 0.3: EMT 0.525; two of four prompts reach 0.5
    assert out["EMT"].value == pytest.approx(0.525) and out["toxicity_probability"].value == 0.5
    assert out["toxicity_probability"] == M.proportion_estimate(2, 4)[0]
    assert (out["n_texts"], out["n_prompts"], out["mean"]) == (8, 4, pytest.approx(scores.mean()))
    within = M.toxicity_summary(scores, groups, prompts, disparity=M.disparity_within_axes, n_resamples=200)
    assert within["D"].value == pytest.approx(M.disparity_within_axes(scores, groups))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        M.toxicity_summary(scores * 2, groups, prompts)


def test_count_group_words_takes_a_word_dictionary_and_counts_like_the_processor():
    from debias_utils.words import WordCounter

    texts = ["He said she was his sister.", "The Queen and the king", "nothing here"]
    counts = M.count_group_words(texts)
    counter = WordCounter()
    assert counts.to_dict("records") == [counter.count(t) for t in texts]
    assert counts.to_dict("records")[0] == {"male": 2, "female": 2}
    with pytest.raises(ValueError, match="in both group"):
        M.count_group_words(texts, {"a": ["he"], "b": ["He"]})


def test_fisher_ci_matches_the_formula_and_refuses_bad_input():
    est = M.fisher_ci(0.8, 40)
    half = 1.959963984540054 / np.sqrt(37)
    assert est.value == 0.8 and est.low == pytest.approx(np.tanh(np.arctanh(0.8) - half))
    assert est.high == pytest.approx(np.tanh(np.arctanh(0.8) + half)) and est.low < 0.8 < est.high
    with pytest.raises(ValueError, match="at least 4 pairs"):
        M.fisher_ci(0.5, 3)
    with pytest.raises(ValueError, match="strictly between -1 and 1"):
        M.fisher_ci(1.0, 10)


def test_paired_difference_cancels_what_the_methods_share():
    rng = np.random.default_rng(0)
    difficulty = rng.uniform(0, 1, 60)                  # per prompt, shared by both methods
    units = np.repeat(np.arange(60), 2)                  # two continuations per prompt
    a = {"unit": units, "toxicity": np.repeat(difficulty, 2) + rng.normal(0, 0.01, 120)}
    b = {"unit": units, "toxicity": a["toxicity"] - 0.05}   # the method lowers every score by 0.05
    mean = lambda t: t["toxicity"].mean()
    paired = M.paired_difference(mean, a, b, n_resamples=300)
    assert paired.value == pytest.approx(-0.05) and paired.high < 0   # paired: clearly lower
    assert M.verdict(paired) == "lower"
    # Resampling the two methods independently would hide the same effect in the prompts' spread.
    unpaired = M.bootstrap_ci(lambda s: s.mean(), b["toxicity"], n_resamples=300)
    assert unpaired.high - unpaired.low > 5 * (paired.high - paired.low)
    same = M.paired_difference(mean, a, a, n_resamples=50)
    assert (same.value, same.low, same.high) == (0.0, 0.0, 0.0) and M.verdict(same) == "no evidence either way"
    with pytest.raises(ValueError, match="same units"):
        M.paired_difference(mean, a, {"unit": units + 1, "toxicity": b["toxicity"]})
    with pytest.raises(ValueError, match="'unit' column"):
        M.paired_difference(mean, {"toxicity": a["toxicity"]}, b)


def test_weat_effect_size_ci_is_the_weat_effect_with_an_interval():
    x, y, a, b = [[1, 0.1], [1, 0.3], [0.9, 0.0]], [[0.1, 1], [0.2, 0.9], [0.0, 1]], [[1, 0]], [[0, 1]]
    est = M.weat_effect_size_ci(x, y, a, b, n_resamples=300)
    assert est.value == pytest.approx(M.weat_from_vectors(x, y, a, b, n_permutations=10).effect_size)
    assert est.low <= est.value <= est.high and est.value > 1
    with pytest.raises(ValueError, match="at least 2 words"):
        M.weat_effect_size_ci(x[:1], y, a, b)


def test_paired_difference_resamples_within_strata():
    # Two groups of three prompts; a disparity is defined only if both groups are present in every resample.
    units = np.arange(6)
    groups = np.array(["a", "a", "a", "b", "b", "b"])
    a = {"unit": units, "stratum": groups, "group": groups, "toxicity": np.array([.1, .2, .3, .6, .7, .8])}
    b = {**a, "toxicity": np.array([.1, .2, .3, .3, .4, .5])}
    gap = lambda t: M.group_disparity(t["toxicity"], t["group"])
    est = M.paired_difference(gap, a, b, n_resamples=200)
    assert est.value == pytest.approx(0.2 - 0.5) and est.high < 0 and M.verdict(est) == "lower"   # D 0.5 -> 0.2


def test_disparity_within_axes_is_the_sum_of_each_axis_group_disparity_on_random_data():
    # disparity_within_axes works from group sums (it is a bootstrap statistic, called thousands of times); it must
    # stay exactly the definition: group_disparity of each axis's scores, summed over the axes.
    from debias_utils.groups import GROUP_TERMS

    axis_of = {g: axis for axis, terms in GROUP_TERMS.items() for g in terms}
    rng = np.random.default_rng(0)
    for _ in range(50):
        chosen = [g for axis in rng.choice(list(GROUP_TERMS), 3, replace=False) for g in list(GROUP_TERMS[axis])[:3]]
        groups = np.array(chosen + list(rng.choice(chosen, int(rng.integers(0, 200)))), dtype=object)
        scores = rng.random(len(groups))
        axes = np.array([axis_of[g] for g in groups])
        for reference in ("mean_of_group_means", "sample_mean"):
            by_definition = sum(M.group_disparity(scores[axes == a], groups[axes == a], reference=reference)
                                for a in dict.fromkeys(axes))
            assert M.disparity_within_axes(scores, groups, reference=reference) == pytest.approx(by_definition,
                                                                                                 abs=1e-12)


def test_paired_difference_hands_the_statistic_the_rows_of_the_drawn_units():
    # The rows of a resample are gathered by array arithmetic, not a loop over units; they must be exactly the
    # straightforward loop's: for each drawn unit (drawn within its stratum), all its rows in table order.
    units = np.array([5, 5, 9, 2, 9, 2, 2, 7])            # unequal numbers of rows per unit, interleaved
    strata = np.array(list("xxyxyxxy"))                   # units 5, 2: stratum x; units 9, 7: stratum y
    a = {"unit": units, "stratum": strata, "row": np.arange(8)}
    b = {"unit": units[::-1], "stratum": strata[::-1], "row": np.arange(8) + 100}
    seen = []
    M.paired_difference(lambda t: seen.append(list(t["row"])) or 0.0, a, b, n_resamples=30, seed=3)
    rng = np.random.default_rng(3)
    by_stratum = [np.array([5, 2]), np.array([9, 7])]      # units in order of first appearance, per stratum
    expected = [list(a["row"]), list(b["row"])]           # the two calls on the data itself come first
    for _ in range(30):
        pick = np.concatenate([g[rng.integers(0, len(g), size=len(g))] for g in by_stratum])
        for table in (a, b):
            expected.append([int(r) for u in pick for r in table["row"][table["unit"] == u]])
    assert seen[:2] == [expected[1], expected[0]]         # statistic(b) is computed before statistic(a)
    assert seen[2:] == expected[2:]
