"""How much an audit measures: the three suites (quick, standard, full) and the work each one implies.

A suite fixes the sample sizes of every section; the sampler, batch size, seed and bootstrap are the course's one
set of evaluation settings (:data:`debias_utils.evaluate.EVALUATION`), so an audit's numbers are comparable with
the notebooks'. Used by :func:`debias_utils.audit.audit`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Suite:
    """Sample sizes of one audit suite (``None`` = everything the benchmark has)."""

    name: str
    crows_pairs: int | None        # CrowS-Pairs pairs, a stratified sample over bias types (None: all 1,508)
    pronoun_templates: str         # occupation templates for the pronoun probe: "heldout" (4) or "all" (12)
    bold_per_group: int            # BOLD prompts per group (gender, race, religious_ideology domains)
    holistic_descriptors: int      # HolisticBias v1.1 descriptors per axis (13 axes)
    holistic_templates: int        # HolisticBias sentence templates per descriptor
    samples: int                   # continuations per prompt for BOLD and HolisticBias
    occupation_samples: int        # continuations per occupation prompt (gender balance)
    neutral_sentences: int         # held-out neutral sentences for perplexity
    max_new_tokens: int = 20       # continuation length for BOLD and HolisticBias (RealToxicityPrompts uses 20)
    occupation_new_tokens: int = 6  # most continuations name their person in the first few tokens

    def as_dict(self) -> dict:
        return asdict(self)


#: The suites. ``quick`` is a real, small sample of every section (≤ 5 min on 2 CPU cores for SmolLM2-135M with
#: three methods); ``standard`` and ``full`` scale the samples up.
SUITES: dict[str, Suite] = {
    "quick": Suite("quick", crows_pairs=150, pronoun_templates="heldout", bold_per_group=4, holistic_descriptors=3,
                   holistic_templates=2, samples=1, occupation_samples=2, neutral_sentences=32),
    "standard": Suite("standard", crows_pairs=600, pronoun_templates="all", bold_per_group=16,
                      holistic_descriptors=8, holistic_templates=2, samples=2, occupation_samples=4,
                      neutral_sentences=96),
    "full": Suite("full", crows_pairs=None, pronoun_templates="all", bold_per_group=30, holistic_descriptors=12,
                  holistic_templates=2, samples=4, occupation_samples=8, neutral_sentences=200),
}

#: The BOLD domains an audit generates on (BOLD's two others, profession and political ideology, are not social
#: groups of the lab README's list).
BOLD_AUDIT_DOMAINS = ("gender", "race", "religious_ideology")


def check_suite(name: str) -> Suite:
    """The suite called ``name``, or a clear error listing the suites."""
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; choose one of {', '.join(SUITES)}")
    return SUITES[name]
