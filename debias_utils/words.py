"""Counting group words in text: the package's one word counter ("he", "her", "nurse" …, per social group).

Taught in ``notebooks/07_decoding/try.ipynb``; the metrics (:func:`debias_utils.metrics.count_group_words`,
:func:`~debias_utils.metrics.male_share_ci`) and method 1's processor (:mod:`debias_utils.decoding`) count with
it, so a word counted in one place is counted the same way everywhere. Depends only on :mod:`debias_utils.groups`.
"""
from __future__ import annotations

import re
from typing import Mapping, Sequence


def check_word_groups(words: Mapping[str, Sequence[str]] | None = None) -> dict[str, list[str]]:
    """``{group: [words]}`` cleaned (lower-case, stripped, no duplicates), or a clear error.

    ``None`` means :data:`debias_utils.groups.GENDER_WORDS`. At least two groups; a word may belong to one
    group only. Example: ``check_word_groups({"male": ["He", "him"], "female": ["she"]})`` →
    ``{"male": ["he", "him"], "female": ["she"]}``. Used by :class:`WordCounter` and the decoding processor.
    """
    if words is None:
        from .groups import GENDER_WORDS

        words = GENDER_WORDS
    if not isinstance(words, Mapping) or len(words) < 2:
        raise ValueError("words must be a dict {group: [words]} with at least two groups, e.g. "
                         "{'male': ['he', 'him'], 'female': ['she', 'her']} (debias_utils.groups.GENDER_WORDS)")
    clean: dict[str, list[str]] = {}
    owner: dict[str, str] = {}
    for name, members in words.items():
        if isinstance(members, str) or not members:
            raise ValueError(f"group {name!r} must be a non-empty list of words, e.g. ['he', 'him']")
        clean[str(name)] = []
        for word in members:
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


class WordCounter:
    """Counts group words in text, case-insensitively and on word boundaries ("he's" counts, "the" not).

    ``WordCounter({"male": ["he"], "female": ["she"]}).count("He said she")`` → ``{"male": 1, "female": 1}``;
    ``.first_group(text)`` is the group of the first group word (or None). Multi-token words ("himself")
    and phrases ("young person") are counted like any other word: counting works on text, not token ids;
    where two entries overlap, the longer one wins.
    Taught in ``notebooks/07_decoding/try.ipynb``.
    """

    def __init__(self, words: Mapping[str, Sequence[str]] | None = None):
        self.groups = check_word_groups(words)
        self.word_group = {w: g for g, members in self.groups.items() for w in members}
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
