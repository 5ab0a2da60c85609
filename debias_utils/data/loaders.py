"""Loaders for the public bias benchmarks: BOLD, CrowS-Pairs, HolisticBias and the debiaswe word lists.

Taught in ``notebooks/06_bias_metrics.ipynb``. Called without a path (``load_bold()``) a loader reads the cached
copy, fetching it first unless ``DEBIAS_LLM_OFFLINE=1`` (see :mod:`debias_utils.data.sources`); an explicit path
reads your own copy. Each loader checks the file's shape and says what it expected when the file is not what
it should be. Nothing here knows about models.

* BOLD (Dhamala et al. 2021): ``<domain>_prompt.json`` = ``{group: {entity_name: [prompt, ...]}}``.
* CrowS-Pairs (Nangia et al. 2020): ``crows_pairs_anonymized.csv`` with ``sent_more, sent_less,
  stereo_antistereo, bias_type, ...`` columns.
* HolisticBias (Smith et al. 2022): ``descriptors.json``, ``nouns.json``, ``sentence_templates.json``.
* debiaswe (Bolukbasi et al. 2016): gender word pairs and lists, professions with gender scores.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .sources import fetch_benchmark

#: BOLD's five domains; each is stored in ``<domain>_prompt.json``.
BOLD_DOMAINS: tuple[str, ...] = ("gender", "race", "religious_ideology", "political_ideology", "profession")

#: The columns every CrowS-Pairs file must have.
CROWS_COLUMNS: tuple[str, ...] = ("sent_more", "sent_less", "stereo_antistereo", "bias_type")
#: CrowS-Pairs' nine bias types.
CROWS_BIAS_TYPES: tuple[str, ...] = ("race-color", "gender", "socioeconomic", "nationality", "religion", "age",
                                     "sexual-orientation", "physical-appearance", "disability")

#: HolisticBias' marker for a descriptor that is not inherently gendered (the dataset's own "(none)").
NO_GENDER = "(none)"

HOLISTIC_BIAS_FILES: tuple[str, ...] = ("descriptors.json", "nouns.json", "sentence_templates.json")
HOLISTIC_BIAS_VERSIONS: tuple[str, ...] = ("v1.0", "v1.1")


def _read_json(path: Path, what: str):
    if not path.is_file():
        raise FileNotFoundError(f"{what}: no file at {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{what}: {path} is not valid JSON ({err})") from None


# ----------------------------------------------------------------------------------------------------
# BOLD
# ----------------------------------------------------------------------------------------------------

def load_bold(path_or_dir=None, domains=None) -> pd.DataFrame:
    """Read BOLD prompt files into one DataFrame with columns ``domain, group, name, prompt``.

    ``path_or_dir`` is BOLD's ``prompts/`` folder (holding ``gender_prompt.json`` ... ) or one
    ``<domain>_prompt.json`` file; ``None`` reads the cached copy (:func:`fetch_benchmark`). ``domains`` picks
    some of :data:`BOLD_DOMAINS` (default: all five when a folder is given). One row per prompt; ``name`` is
    BOLD's entity, e.g. ``"Jacob_Zachar"``.
    Example: ``load_bold(domains=["gender"]).group.value_counts()`` → American_actors 2048, American_actresses 1156.
    Taught in ``notebooks/06_bias_metrics.ipynb`` (which groups the course covers); used by
    ``benchmarks/bold_toxicity.py`` and the audit.
    """
    path = fetch_benchmark("bold") if path_or_dir is None else Path(path_or_dir)
    if isinstance(domains, str):
        domains = [domains]
    if domains is not None:
        unknown = [d for d in domains if d not in BOLD_DOMAINS]
        if unknown:
            raise ValueError(f"unknown BOLD domain {unknown[0]!r}; choose from {list(BOLD_DOMAINS)}")
        if not domains:
            raise ValueError(f"domains is empty; pass None for all of {list(BOLD_DOMAINS)}")
    if path.is_dir():
        files = [(d, path / f"{d}_prompt.json") for d in (domains or BOLD_DOMAINS)]
        missing = [str(f) for _, f in files if not f.is_file()]
        if missing:
            raise FileNotFoundError(
                f"BOLD: expected {', '.join(f.name for _, f in files)} in {path}; missing {missing}. "
                "Pass BOLD's prompts/ folder (amazon-science/bold).")
    elif path.is_file():
        if not path.name.endswith("_prompt.json"):
            raise ValueError(f"BOLD: {path.name} is not a BOLD prompt file; expected one of "
                             f"{[d + '_prompt.json' for d in BOLD_DOMAINS]}")
        domain = path.name[: -len("_prompt.json")]
        if domains is not None and domain not in domains:
            raise ValueError(f"BOLD: file {path.name} holds domain {domain!r}, not {domains}")
        files = [(domain, path)]
    else:
        raise FileNotFoundError(f"BOLD: {path} is neither a folder nor a file; pass BOLD's prompts/ folder")

    rows = []
    for domain, file in files:
        data = _read_json(file, "BOLD")
        shape_hint = 'expected {group: {entity_name: [prompt, ...]}}, e.g. {"American_actors": {"Jacob_Zachar": ' \
                     '["Jacob Zachar is an American actor whose "]}}'
        if not isinstance(data, dict) or not data:
            raise ValueError(f"BOLD: {file} has the wrong shape; {shape_hint}")
        for group, entities in data.items():
            if not isinstance(entities, dict):
                raise ValueError(f"BOLD: {file} group {group!r} maps to {type(entities).__name__}; {shape_hint}")
            for name, prompts in entities.items():
                if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
                    raise ValueError(f"BOLD: {file} entity {group}/{name} is not a list of strings; {shape_hint}")
                rows.extend({"domain": domain, "group": group, "name": name, "prompt": p} for p in prompts)
    if not rows:
        raise ValueError(f"BOLD: no prompts found in {[str(f) for _, f in files]}")
    return pd.DataFrame(rows, columns=["domain", "group", "name", "prompt"])


# ----------------------------------------------------------------------------------------------------
# CrowS-Pairs
# ----------------------------------------------------------------------------------------------------

def load_crows_pairs(path=None) -> pd.DataFrame:
    """Read a CrowS-Pairs CSV; returns its rows with at least ``sent_more, sent_less, stereo_antistereo,
    bias_type``.

    ``sent_more`` is always the *more stereotyping* sentence; ``stereo_antistereo`` says whether that pair
    demonstrates ("stereo") or violates ("antistereo") a stereotype about the disadvantaged group. Extra
    columns of the original file (``annotations``, ``anon_writer``, ``anon_annotators``) are kept.
    ``path`` is the CSV (or a folder holding it); ``None`` reads the cached copy (:func:`fetch_benchmark`).
    Example: ``len(load_crows_pairs())`` → 1508.
    Taught in ``notebooks/06_bias_metrics.ipynb``.
    """
    path = fetch_benchmark("crows-pairs") if path is None else Path(path)
    if path.is_dir():
        candidate = path / "crows_pairs_anonymized.csv"
        if not candidate.is_file():
            raise FileNotFoundError(f"CrowS-Pairs: {path} is a folder without crows_pairs_anonymized.csv; "
                                    "pass the CSV file (nyu-mll/crows-pairs data/crows_pairs_anonymized.csv)")
        path = candidate
    if not path.is_file():
        raise FileNotFoundError(f"CrowS-Pairs: no file at {path}; pass crows_pairs_anonymized.csv")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
        raise ValueError(f"CrowS-Pairs: {path} is not a readable CSV ({err})") from None
    return check_pairs(df, f"CrowS-Pairs file {path}")


def check_pairs(pairs, what: str = "pairs") -> pd.DataFrame:
    """Validate a CrowS-Pairs-style table (DataFrame or list of dicts) and return it as a clean DataFrame.

    Checks the four columns, non-empty string sentences, ``stereo_antistereo`` in {stereo, antistereo};
    drops a leading unnamed index column. Used by :func:`load_crows_pairs` and by
    :func:`debias_utils.metrics.crows_pairs_score`.
    Example: ``check_pairs(debias_utils.groups.CROWS_STYLE_PAIRS).shape`` → ``(40, 4)``.
    Used by :func:`load_crows_pairs` and :func:`debias_utils.metrics.crows_pairs_score`.
    """
    df = pd.DataFrame(pairs) if not isinstance(pairs, pd.DataFrame) else pairs.copy()
    df = df.drop(columns=[c for c in df.columns if str(c).startswith("Unnamed")])
    missing = [c for c in CROWS_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}; expected at least {list(CROWS_COLUMNS)}, "
                         f"got {list(df.columns)}")
    if df.empty:
        raise ValueError(f"{what} has no rows")
    for col in ("sent_more", "sent_less", "bias_type"):
        bad = df[col].map(lambda v: not isinstance(v, str) or not v.strip())
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            raise ValueError(f"{what}: row {i} has an empty or non-text {col!r} ({df[col].iloc[i]!r})")
    bad = ~df["stereo_antistereo"].isin(["stereo", "antistereo"])
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        raise ValueError(f"{what}: row {i} has stereo_antistereo={df['stereo_antistereo'].iloc[i]!r}; "
                         "expected 'stereo' or 'antistereo'")
    return df.reset_index(drop=True)


# ----------------------------------------------------------------------------------------------------
# HolisticBias
# ----------------------------------------------------------------------------------------------------

@dataclass
class HolisticBias:
    """The three HolisticBias tables of one version.

    ``descriptors``: ``axis, bucket, descriptor, gender, preference, article`` (one row per descriptor;
    ``gender`` is ``"(none)"`` unless the descriptor is gendered, like "Latina");
    ``nouns``: ``gender, noun, plural``; ``templates``: ``template, first_turn_only, must_be_noun``.
    """

    version: str
    descriptors: pd.DataFrame
    nouns: pd.DataFrame
    templates: pd.DataFrame

    @property
    def axes(self) -> list[str]:
        """The demographic axes, in file order."""
        return list(dict.fromkeys(self.descriptors["axis"]))


def load_holistic_bias(directory=None, version: str = "v1.0") -> HolisticBias:
    """Read HolisticBias' descriptors, nouns and sentence templates from ``directory/<version>/``.

    ``directory`` is the ``dataset`` folder holding ``v1.0/`` and ``v1.1/`` (or a version folder itself);
    ``None`` reads the cached copy (:func:`fetch_benchmark`). ``version`` is one of :data:`HOLISTIC_BIAS_VERSIONS`.
    Example: ``hb = load_holistic_bias(version="v1.1"); len(hb.axes)`` → 13.
    Taught in ``notebooks/06_bias_metrics.ipynb`` (which groups the course covers); used by the audit.
    """
    if version not in HOLISTIC_BIAS_VERSIONS:
        raise ValueError(f"unknown HolisticBias version {version!r}; choose from {list(HOLISTIC_BIAS_VERSIONS)}")
    directory = fetch_benchmark("holistic-bias") if directory is None else Path(directory)
    folder = directory / version if (directory / version).is_dir() else directory
    if not folder.is_dir():
        raise FileNotFoundError(f"HolisticBias: {directory} is not a folder; pass the folder holding {version}/")
    missing = [f for f in HOLISTIC_BIAS_FILES if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(f"HolisticBias: {folder} lacks {missing}; expected {list(HOLISTIC_BIAS_FILES)} "
                                f"(facebookresearch/ResponsibleNLP holistic_bias/dataset/{version})")

    raw = _read_json(folder / "descriptors.json", "HolisticBias descriptors")
    hint = "expected {axis: {bucket: [descriptor or {'descriptor': ..., 'preference': ...}]}}"
    if not isinstance(raw, dict) or not raw:
        raise ValueError(f"HolisticBias: {folder / 'descriptors.json'} has the wrong shape; {hint}")
    rows = []
    for axis, buckets in raw.items():
        if not isinstance(buckets, dict):
            raise ValueError(f"HolisticBias: axis {axis!r} maps to {type(buckets).__name__}; {hint}")
        for bucket, items in buckets.items():
            if not isinstance(items, list):
                raise ValueError(f"HolisticBias: {axis}/{bucket} is not a list; {hint}")
            for item in items:
                if isinstance(item, str):
                    item = {"descriptor": item}
                if not isinstance(item, dict) or not isinstance(item.get("descriptor"), str):
                    raise ValueError(f"HolisticBias: {axis}/{bucket} has an entry {item!r}; {hint}")
                rows.append({"axis": axis, "bucket": bucket, "descriptor": item["descriptor"],
                             "gender": item.get("gender", NO_GENDER), "preference": item.get("preference", "no_data"),
                             "article": item.get("article", _article(item["descriptor"]))})
    descriptors = pd.DataFrame(rows)

    raw = _read_json(folder / "nouns.json", "HolisticBias nouns")
    hint = "expected {female|male|neutral: [[singular, plural], ...]}"
    if not isinstance(raw, dict) or not raw:
        raise ValueError(f"HolisticBias: {folder / 'nouns.json'} has the wrong shape; {hint}")
    rows = []
    for gender, pairs in raw.items():
        if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
            raise ValueError(f"HolisticBias: nouns[{gender!r}] is not a list of [singular, plural]; {hint}")
        rows.extend({"gender": gender, "noun": s, "plural": p} for s, p in pairs)
    nouns = pd.DataFrame(rows)

    raw = _read_json(folder / "sentence_templates.json", "HolisticBias templates")
    if not isinstance(raw, dict) or not raw or not all(isinstance(v, dict) for v in raw.values()):
        raise ValueError(f"HolisticBias: {folder / 'sentence_templates.json'} has the wrong shape; expected "
                         "{template: {options}} with {noun_phrase} / {plural_noun_phrase} slots")
    templates = pd.DataFrame([{"template": t, "first_turn_only": bool(o.get("first_turn_only", False)),
                               "must_be_noun": bool(o.get("must_be_noun", False))} for t, o in raw.items()])
    return HolisticBias(version=version, descriptors=descriptors, nouns=nouns, templates=templates)


def _article(word: str) -> str:
    """HolisticBias' own rule: "an" before a vowel letter, else "a" (descriptors may override it)."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def holistic_bias_prompts(hb: HolisticBias, axis: str, noun_genders=("neutral",), templates=None,
                          preferences=None) -> pd.DataFrame:
    """Build HolisticBias sentences descriptor × noun × template for one axis.

    Noun phrases follow the dataset's own rule: ``"{article} {descriptor} {noun}"`` (singular) and
    ``"{descriptor} {plural}"`` (plural), skipping nouns whose gender clashes with a gendered descriptor
    (e.g. "Latina" only with female nouns). ``noun_genders`` picks nouns by gender ("female", "male",
    "neutral"); ``templates`` is a list of template strings (default: all); ``preferences`` keeps only
    descriptors with those preference labels (e.g. ``["reviewed", "no_data"]``). Standalone noun phrases
    and the descriptor-only variant of the original generator are left out to keep the set small.
    Columns: ``prompt, axis, bucket, descriptor, noun, noun_gender, template``.
    Example: ``holistic_bias_prompts(hb, "age", ["neutral"], ["I have a friend who is {noun_phrase}."])``.
    Tested in ``tests/test_data.py`` on the real files.
    """
    if not isinstance(hb, HolisticBias):
        raise TypeError("hb must come from load_holistic_bias(...)")
    if axis not in hb.axes:
        raise ValueError(f"unknown HolisticBias axis {axis!r}; choose one of {hb.axes}")
    if isinstance(noun_genders, str):
        noun_genders = [noun_genders]
    known = set(hb.nouns["gender"])
    unknown = [g for g in noun_genders if g not in known]
    if unknown or not noun_genders:
        raise ValueError(f"noun_genders={list(noun_genders)}; choose from {sorted(known)}")
    if templates is None:
        templates = list(hb.templates["template"])
    elif isinstance(templates, str):
        templates = [templates]
    bad = [t for t in templates if "{noun_phrase}" not in t and "{plural_noun_phrase}" not in t]
    if bad or not templates:
        raise ValueError(f"template {bad[0] if bad else None!r} has neither '{{noun_phrase}}' nor "
                         "'{plural_noun_phrase}'; pass HolisticBias-style templates")
    desc = hb.descriptors[hb.descriptors["axis"] == axis]
    if preferences is not None:
        desc = desc[desc["preference"].isin(list(preferences))]
        if desc.empty:
            raise ValueError(f"no {axis} descriptor has a preference in {list(preferences)}")
    nouns = hb.nouns[hb.nouns["gender"].isin(list(noun_genders))]
    rows = []
    for d in desc.itertuples(index=False):
        for n in nouns.itertuples(index=False):
            if d.gender != NO_GENDER and d.gender != n.gender:
                continue
            singular = f"{d.article} {d.descriptor} {n.noun}"
            plural = f"{d.descriptor} {n.plural}"
            for t in templates:
                rows.append({"prompt": t.format(noun_phrase=singular, plural_noun_phrase=plural), "axis": axis,
                             "bucket": d.bucket, "descriptor": d.descriptor, "noun": n.noun,
                             "noun_gender": n.gender, "template": t})
    if not rows:
        raise ValueError(f"no prompts for axis {axis!r} with nouns {list(noun_genders)}: every descriptor is "
                         "gendered differently from the chosen nouns")
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------------
# debiaswe word lists
# ----------------------------------------------------------------------------------------------------

#: The debiaswe files and the JSON shape each one has.
DEBIASWE_FILES: dict[str, str] = {
    "definitional_pairs": "pairs", "equalize_pairs": "pairs", "gender_specific_seed": "words",
    "gender_specific_full": "words", "professions": "professions",
}


def load_debiaswe(directory=None) -> dict:
    """Bolukbasi et al.'s (2016) word lists: ``{"definitional_pairs": [(female, male), ...], "equalize_pairs": ...,
    "gender_specific_seed": [...], "gender_specific_full": [...], "professions": DataFrame}``.

    ``professions`` has columns ``profession, definitional, stereotypical`` (the paper's gender scores, −1 female
    … +1 male). ``directory`` is debiaswe's ``data/`` folder; ``None`` reads the cached copy.
    Example: ``load_debiaswe()["definitional_pairs"][0]`` → ``("woman", "man")``.
    Tested in ``tests/test_data.py`` on the real files.
    """
    folder = fetch_benchmark("debiaswe") if directory is None else Path(directory)
    out = {}
    for name, shape in DEBIASWE_FILES.items():
        data = _read_json(folder / f"{name}.json", "debiaswe")
        if shape == "words" and not (isinstance(data, list) and data and all(isinstance(w, str) for w in data)):
            raise ValueError(f"debiaswe: {name}.json should be a list of words, e.g. [\"he\", \"his\"]")
        if shape == "pairs":
            if not (isinstance(data, list) and data and all(
                    isinstance(p, list) and len(p) == 2 and all(isinstance(w, str) for w in p) for p in data)):
                raise ValueError(f"debiaswe: {name}.json should be a list of word pairs, e.g. [[\"woman\", \"man\"]]")
            data = [tuple(p) for p in data]
        if shape == "professions":
            if not (isinstance(data, list) and data and all(
                    isinstance(r, list) and len(r) == 3 and isinstance(r[0], str) for r in data)):
                raise ValueError("debiaswe: professions.json should be a list of [profession, definitional, "
                                 "stereotypical], e.g. [[\"accountant\", 0.0, 0.4]]")
            data = pd.DataFrame(data, columns=["profession", "definitional", "stereotypical"])
        out[name] = data
    return out
