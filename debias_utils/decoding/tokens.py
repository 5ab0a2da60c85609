"""Group words → the token ids a logits processor can steer (whole words spelled by one token).

Taught in ``notebooks/07_decoding/try.ipynb``. Counting words in text is not here: that is
:class:`debias_utils.words.WordCounter`, the package's one word counter.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from ..words import check_word_groups


def word_variants(word: str) -> list[str]:
    """The spellings of ``word`` that start a word in running text: ``" he"``, ``" He"``, ``"He"``.

    The bare lower-case form (``"he"``) is left out on purpose: as a token it mostly continues another
    word (``"t" + "he"`` is "the"), so steering it would steer the wrong thing.
    Example: ``word_variants("she")`` → ``[' she', ' She', 'She']``. Taught in ``notebooks/07_decoding/try.ipynb``.
    """
    cap = word[:1].upper() + word[1:]
    return list(dict.fromkeys([" " + word, " " + cap, cap]))


def group_token_ids(tokenizer, groups: Mapping[str, Sequence[str]] | None = None):
    """Token ids that spell a whole group word in one token, per group, and which words they cover.

    Returns ``(token_ids, steerable, count_only)``: ``token_ids[g]`` the single-token variants of
    :func:`word_variants`; ``steerable[g]`` the words with at least one such token; ``count_only[g]`` the
    words that always need several tokens — still counted in text, but not steerable.
    Example: ``ids, ok, multi = group_token_ids(tok, {"male": ["he", "himself"], "female": ["she"]})``.
    Taught in ``notebooks/07_decoding/try.ipynb``.
    """
    groups = check_word_groups(groups)
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
