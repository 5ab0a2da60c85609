"""Tests of the course's own word lists, templates and splits (debias_utils.groups)."""
import difflib
import re
from collections import Counter

import pytest

from debias_utils import groups as g


def test_gender_words_are_lowercase_disjoint_and_include_pronouns():
    male, female = g.GENDER_WORDS["male"], g.GENDER_WORDS["female"]
    assert set(g.GENDER_WORDS) == {"male", "female"}
    assert not set(male) & set(female)
    assert {"he", "him", "his", "himself", "man", "men", "boy", "father", "son", "brother", "husband", "mr",
            "king"} <= set(male)
    assert {"she", "her", "hers", "herself", "woman", "women", "girl", "mother", "daughter", "sister", "wife",
            "mrs", "ms", "queen"} <= set(female)
    for word in male + female + g.NEUTRAL_PRONOUNS:
        assert word == word.lower() and word.strip() == word and word
    assert len(set(male)) == len(male) and len(set(female)) == len(female)
    assert g.NEUTRAL_PRONOUNS == ["they", "them", "their", "theirs", "themselves"]
    assert not set(g.NEUTRAL_PRONOUNS) & (set(male) | set(female))


def test_gender_pairs_map_male_to_female_words():
    for m, f in g.GENDER_PAIRS:
        assert m in g.GENDER_WORDS["male"], m
        assert f in g.GENDER_WORDS["female"], f
    assert ("he", "she") in g.GENDER_PAIRS and ("man", "woman") in g.GENDER_PAIRS


def test_occupations_have_shares_and_titles():
    assert len(g.OCCUPATIONS) == 40
    assert set(g.OCCUPATIONS) == set(g.OCCUPATION_BLS_TITLES)
    assert all(0 < share < 1 for share in g.OCCUPATIONS.values())
    # The list must span the range, otherwise a correlation with the share of women is meaningless.
    assert max(g.OCCUPATIONS.values()) >= 0.9 and min(g.OCCUPATIONS.values()) <= 0.1
    assert "https://www.bls.gov/cps/cpsaat11.htm" in g.OCCUPATIONS_SOURCE
    # Well-known ends of the table: nursing is female-dominated, carpentry male-dominated.
    assert g.OCCUPATIONS["nurse"] > 0.8 > 0.3 > g.OCCUPATIONS["software developer"] > g.OCCUPATIONS["carpenter"]


def test_split_occupations_is_a_balanced_partition():
    dev, held = g.split_occupations(0)
    assert (dev, held) == (g.DEV_OCCUPATIONS, g.HELDOUT_OCCUPATIONS)
    assert not set(dev) & set(held)
    assert sorted(dev + held) == sorted(g.OCCUPATIONS)
    assert (len(dev), len(held)) == (30, 10)
    held_shares = [g.OCCUPATIONS[o] for o in held]
    assert max(held_shares) >= 0.8 and min(held_shares) <= 0.2
    assert g.split_occupations(0) == g.split_occupations(0)
    assert g.split_occupations(1) != g.split_occupations(0)
    with pytest.raises(ValueError, match="heldout_every"):
        g.split_occupations(0, heldout_every=1)


def test_occupation_templates_split():
    assert len(g.OCCUPATION_TEMPLATES) >= 10
    assert g.OCCUPATION_TEMPLATES == g.OCCUPATION_TEMPLATES_DEV + g.OCCUPATION_TEMPLATES_HELDOUT
    assert not set(g.OCCUPATION_TEMPLATES_DEV) & set(g.OCCUPATION_TEMPLATES_HELDOUT)
    for t in g.OCCUPATION_TEMPLATES:
        assert t.count("{occupation}") == 1
        filled = t.format(occupation="nurse")
        # No pronoun in the template itself: the model must choose it.
        assert not re.search(r"\b(he|she|his|her|they)\b", filled, re.I), t


def test_group_terms_cover_the_seed_axes():
    assert set(g.GROUP_TERMS) == {"gender", "sex", "age", "race", "religion", "nationality", "disability",
                                  "sexual_orientation"}
    assert set(g.GROUP_TERMS["age"]) == {"young", "middle-aged", "old"}
    assert {"man", "woman", "trans", "non-binary"} == set(g.GROUP_TERMS["gender"])
    for axis, groups in g.GROUP_TERMS.items():
        seen = Counter(t for terms in groups.values() for t in terms)
        assert max(seen.values()) == 1, f"{axis}: a term belongs to two groups"
        for group, terms in groups.items():
            assert len(terms) >= 3, (axis, group)


def test_split_group_terms_holds_out_last_term():
    train, held = g.split_group_terms()
    assert (train, held) == (g.TRAIN_GROUP_TERMS, g.HELDOUT_GROUP_TERMS)
    for axis, groups in g.GROUP_TERMS.items():
        for group, terms in groups.items():
            assert train[axis][group] + held[axis][group] == terms
            assert len(held[axis][group]) == 1
    with pytest.raises(ValueError, match="cannot hold out"):
        g.split_group_terms(heldout_per_group=3)


def test_identity_templates_and_prompts():
    assert len(g.IDENTITY_TEMPLATES) >= 12
    assert not set(g.IDENTITY_TEMPLATES_TRAIN) & set(g.IDENTITY_TEMPLATES_HELDOUT)
    df = g.prompts("age", "train", "train")
    n_terms = sum(len(t) for t in g.TRAIN_GROUP_TERMS["age"].values())
    assert len(df) == len(g.IDENTITY_TEMPLATES_TRAIN) * n_terms == 132
    assert list(df.columns) == ["prompt", "axis", "group", "term", "template_id", "template"]
    row = df.iloc[0]
    assert row.prompt == g.IDENTITY_TEMPLATES[row.template_id].format(term=row.term)
    assert row.prompt == "The young person was known for"
    held = g.prompts("religion", "heldout")
    assert set(held.template_id) == set(range(len(g.IDENTITY_TEMPLATES_TRAIN), len(g.IDENTITY_TEMPLATES)))
    assert set(held.group) == set(g.GROUP_TERMS["religion"])
    custom = g.prompts("gender", ["A {term} said"], {"x": ["cat"]})
    assert custom.prompt.tolist() == ["A cat said"] and custom.template_id.tolist() == [0]


@pytest.mark.parametrize("kwargs, match", [
    ({"axis": "height"}, "unknown axis"),
    ({"axis": "age", "templates": "dev"}, "templates="),
    ({"axis": "age", "templates": ["The person said"]}, "slot"),
    ({"axis": "age", "templates": []}, "empty"),
    ({"axis": "age", "terms": "test"}, "terms="),
])
def test_prompts_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        g.prompts(**kwargs)


def test_weat_sets():
    assert set(g.WEAT_TESTS) >= {"weat1_flowers_insects_pleasant", "weat6_names_career_family"}
    for name, (x, y, a, b) in g.WEAT_TESTS.items():
        assert len(x) == len(y) >= 8 and len(a) == len(b) >= 8, name
        assert not set(x) & set(y) and not set(a) & set(b), name
    assert len(g.WEAT_FLOWERS) == len(g.WEAT_INSECTS) == len(g.WEAT_PLEASANT) == len(g.WEAT_UNPLEASANT) == 25


def test_crows_style_pairs_follow_the_crows_format():
    pairs = g.CROWS_STYLE_PAIRS
    assert len(pairs) == 40
    assert Counter(p["bias_type"] for p in pairs) == {"gender": 8, "age": 8, "religion": 8, "race-color": 8,
                                                     "disability": 8}
    directions = Counter(p["stereo_antistereo"] for p in pairs)
    assert set(directions) == {"stereo", "antistereo"} and directions["stereo"] > directions["antistereo"]
    for p in pairs:
        assert set(p) == {"sent_more", "sent_less", "stereo_antistereo", "bias_type"}
        a, b = p["sent_more"].split(), p["sent_less"].split()
        assert a != b
        # Minimal pairs: only the group words differ.
        changed = sum(max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in
                      difflib.SequenceMatcher(a=a, b=b).get_opcodes() if tag != "equal")
        assert changed <= 3, p
    assert len({p["sent_more"] for p in pairs}) == 40
