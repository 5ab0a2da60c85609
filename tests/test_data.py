"""Tests of the benchmark loaders (debias_utils.data): real counts from the cached public files (fetched by
`make setup`, i.e. `debias-llm download --benchmarks`), format checks on small files the tests write."""
import json

import pandas as pd
import pytest

from debias_utils.data import (BOLD_DOMAINS, benchmarks_dir, check_pairs, holistic_bias_prompts, load_bold,
                               load_crows_pairs, load_debiaswe, load_holistic_bias)
from debias_utils.groups import CROWS_STYLE_PAIRS

# Counts stated in the data sets' papers and READMEs (BOLD: Dhamala et al. 2021, table 1; CrowS-Pairs: its README)
BOLD_COUNTS = {"gender": 3204, "race": 7657, "religious_ideology": 639, "political_ideology": 1984,
               "profession": 10195}
BOLD_GROUPS = {"gender": 2, "race": 4, "religious_ideology": 7, "political_ideology": 12, "profession": 18}
CROWS_COUNTS = {"race-color": 516, "gender": 262, "socioeconomic": 172, "nationality": 159, "religion": 105,
                "age": 87, "sexual-orientation": 84, "physical-appearance": 63, "disability": 60}


@pytest.fixture(scope="module")
def benchmarks():
    """The cache folder of the public benchmarks; every loader call below without a path reads it too."""
    return benchmarks_dir()


@pytest.fixture(scope="module")
def bold():
    return load_bold()


def test_bold_counts_match_the_readme(bold):
    assert list(bold.columns) == ["domain", "group", "name", "prompt"]
    assert len(bold) == 23679
    assert bold["domain"].value_counts().to_dict() == BOLD_COUNTS
    assert bold.groupby("domain")["group"].nunique().to_dict() == BOLD_GROUPS
    gender = bold[bold.domain == "gender"]
    assert gender["group"].value_counts().to_dict() == {"American_actors": 2048, "American_actresses": 1156}
    first = gender.iloc[0]
    assert (first["name"], first["prompt"]) == ("Jacob_Zachar", "Jacob Zachar is an American actor whose ")


def test_bold_domain_filter_and_single_file(benchmarks, bold):
    only = load_bold(benchmarks / "bold", domains=["gender", "religious_ideology"])
    assert len(only) == 3204 + 639
    single = load_bold(benchmarks / "bold" / "gender_prompt.json")
    pd.testing.assert_frame_equal(single, bold[bold.domain == "gender"].reset_index(drop=True))
    assert load_bold(benchmarks / "bold", "race").shape == (7657, 4)


def test_bold_errors(tmp_path, benchmarks):
    with pytest.raises(ValueError, match="unknown BOLD domain"):
        load_bold(benchmarks / "bold", ["sports"])
    with pytest.raises(FileNotFoundError, match="gender_prompt.json"):
        load_bold(tmp_path)  # an empty folder
    with pytest.raises(FileNotFoundError, match="neither a folder nor a file"):
        load_bold(tmp_path / "nope")
    wrong_name = tmp_path / "gender.json"
    wrong_name.write_text("{}")
    with pytest.raises(ValueError, match="not a BOLD prompt file"):
        load_bold(wrong_name)
    bad_shape = tmp_path / "gender_prompt.json"
    bad_shape.write_text(json.dumps(["Jacob Zachar is an American actor whose "]))
    with pytest.raises(ValueError, match="wrong shape"):
        load_bold(bad_shape)
    bad_shape.write_text(json.dumps({"American_actors": {"Jacob_Zachar": "not a list"}}))
    with pytest.raises(ValueError, match="not a list of strings"):
        load_bold(bad_shape)
    bad_shape.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_bold(bad_shape)
    bad_shape.write_text("")   # an empty file
    with pytest.raises(ValueError, match="not valid JSON"):
        load_bold(bad_shape)
    bad_shape.write_text("{}")
    with pytest.raises(ValueError, match="wrong shape"):
        load_bold(bad_shape)


def test_crows_pairs_counts_match_the_readme(benchmarks):
    df = load_crows_pairs()
    pd.testing.assert_frame_equal(df, load_crows_pairs(benchmarks / "crows_pairs" / "crows_pairs_anonymized.csv"))
    assert len(df) == 1508
    assert df["bias_type"].value_counts().to_dict() == CROWS_COUNTS
    assert set(df["stereo_antistereo"]) == {"stereo", "antistereo"}
    assert list(df.columns[:4]) == ["sent_more", "sent_less", "stereo_antistereo", "bias_type"]
    assert not any(str(c).startswith("Unnamed") for c in df.columns)
    # A folder holding the CSV works too.
    assert len(load_crows_pairs(benchmarks / "crows_pairs")) == 1508


def test_crows_pairs_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="crows_pairs_anonymized.csv"):
        load_crows_pairs(tmp_path)
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("sentence,label\nhello,1\n")
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['sent_more'"):
        load_crows_pairs(wrong)
    wrong.write_text("sent_more,sent_less,stereo_antistereo,bias_type\na,b,maybe,age\n")
    with pytest.raises(ValueError, match="stereo_antistereo='maybe'"):
        load_crows_pairs(wrong)
    wrong.write_text("sent_more,sent_less,stereo_antistereo,bias_type\n")
    with pytest.raises(ValueError, match="no rows"):
        load_crows_pairs(wrong)
    wrong.write_text("sent_more,sent_less,stereo_antistereo,bias_type\n,b,stereo,age\n")
    with pytest.raises(ValueError, match="empty or non-text 'sent_more'"):
        load_crows_pairs(wrong)
    wrong.write_text("")   # an empty file
    with pytest.raises(ValueError, match="not a readable CSV"):
        load_crows_pairs(wrong)
    wrong.write_bytes(b"\xff\xfe\x00garbage")   # not text at all (e.g. a zip passed by mistake)
    with pytest.raises(ValueError, match="not a readable CSV"):
        load_crows_pairs(wrong)


def test_check_pairs_accepts_the_course_pairs():
    df = check_pairs(CROWS_STYLE_PAIRS)
    assert df.shape == (40, 4)
    with pytest.raises(ValueError, match="lacks column"):
        check_pairs([{"sent_more": "a", "sent_less": "b"}])


def test_holistic_bias_tables(benchmarks):
    hb = load_holistic_bias()
    assert hb.version == "v1.0"
    assert len(hb.axes) == 13
    assert {"ability", "age", "gender_and_sex", "race_ethnicity", "religion", "sexual_orientation"} <= set(hb.axes)
    assert len(hb.descriptors) == 524
    v11 = load_holistic_bias(version="v1.1")
    assert (v11.version, len(v11.descriptors), len(v11.axes)) == ("v1.1", 583, 13)
    assert len(load_holistic_bias(benchmarks / "holistic_bias", "v1.1").descriptors) == 583
    with pytest.raises(ValueError, match=r"unknown HolisticBias version 'v2'; choose from \['v1.0', 'v1.1'\]"):
        load_holistic_bias(version="v2")
    assert hb.nouns["gender"].value_counts().to_dict() == {"male": 11, "female": 10, "neutral": 9}
    assert len(hb.templates) == 26
    deaf = hb.descriptors[hb.descriptors.descriptor == "Deaf"].iloc[0]
    assert (deaf.axis, deaf.bucket, deaf.preference, deaf.article) == ("ability", "auditory", "reviewed", "a")
    latina = hb.descriptors[hb.descriptors.descriptor == "Latina"].iloc[0]
    assert latina.gender == "female"
    # A version folder itself is accepted too.
    assert len(load_holistic_bias(benchmarks / "holistic_bias" / "v1.0").descriptors) == 524


def test_holistic_bias_prompts():
    hb = load_holistic_bias()
    age = holistic_bias_prompts(hb, "age")
    assert len(age) == 59 * 9 * 26
    template = "I have a friend who is {noun_phrase}."
    race = holistic_bias_prompts(hb, "race_ethnicity", ["neutral"], [template])
    assert len(race) == 28 * 9  # Latina / Latino are gendered, so no neutral nouns for them
    assert "I have a friend who is an Asian individual." in set(race.prompt)
    female = holistic_bias_prompts(hb, "race_ethnicity", "female", [template])
    assert len(female) == 29 * 10 and "I have a friend who is a Latina woman." in set(female.prompt)
    plural = holistic_bias_prompts(hb, "age", "male", ["I like {plural_noun_phrase}."])
    assert "I like middle-aged dads." in set(plural.prompt)
    reviewed = holistic_bias_prompts(hb, "ability", preferences=["reviewed"], templates=[template])
    assert set(reviewed.descriptor) <= set(hb.descriptors.query("preference == 'reviewed'").descriptor)
    with pytest.raises(ValueError, match="unknown HolisticBias axis"):
        holistic_bias_prompts(hb, "height")
    with pytest.raises(ValueError, match="noun_genders"):
        holistic_bias_prompts(hb, "age", ["robot"])
    with pytest.raises(ValueError, match="neither"):
        holistic_bias_prompts(hb, "age", templates=["I am {descriptor}."])


def test_holistic_bias_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="lacks"):
        load_holistic_bias(tmp_path)
    (tmp_path / "v1.0").mkdir()
    for name in ("descriptors.json", "nouns.json", "sentence_templates.json"):
        (tmp_path / "v1.0" / name).write_text("{}")
    with pytest.raises(ValueError, match="descriptors.json has the wrong shape"):
        load_holistic_bias(tmp_path)
    (tmp_path / "v1.0" / "descriptors.json").write_text(json.dumps({"age": {"young": ["young"]}}))
    (tmp_path / "v1.0" / "nouns.json").write_text(json.dumps({"male": [["man"]]}))
    with pytest.raises(ValueError, match=r"not a list of \[singular, plural\]"):
        load_holistic_bias(tmp_path)


def test_bold_domains_constant():
    assert BOLD_DOMAINS == tuple(BOLD_COUNTS)


def test_debiaswe_word_lists():
    words = load_debiaswe()
    assert words["definitional_pairs"][0] == ("woman", "man") and len(words["definitional_pairs"]) == 10
    assert len(words["equalize_pairs"]) == 52
    assert (len(words["gender_specific_seed"]), len(words["gender_specific_full"])) == (218, 1441)
    professions = words["professions"]
    assert list(professions.columns) == ["profession", "definitional", "stereotypical"] and len(professions) == 320
    assert professions.set_index("profession").loc["actress", "definitional"] == -1.0


def test_debiaswe_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="debiaswe: no file at .*definitional_pairs.json"):
        load_debiaswe(tmp_path)
    files = {"definitional_pairs": [["woman", "man"]], "equalize_pairs": [["a", "b"]],
             "gender_specific_seed": ["he"], "gender_specific_full": ["he"], "professions": [["nurse", -0.5, 0.9]]}
    for name, value in files.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(value))
    assert load_debiaswe(tmp_path)["professions"].iloc[0].tolist() == ["nurse", -0.5, 0.9]
    (tmp_path / "equalize_pairs.json").write_text(json.dumps([["only one"]]))
    with pytest.raises(ValueError, match="equalize_pairs.json should be a list of word pairs"):
        load_debiaswe(tmp_path)
    (tmp_path / "equalize_pairs.json").write_text(json.dumps([["a", "b"]]))
    (tmp_path / "gender_specific_full.json").write_text(json.dumps({"he": 1}))
    with pytest.raises(ValueError, match="gender_specific_full.json should be a list of words"):
        load_debiaswe(tmp_path)
