"""Bias metrics (偏见 bias between social groups), organised by the families the course teaches.

Taught in ``notebooks/06_bias_metrics.ipynb``. Four modules, one family each:

1. :mod:`.disparity` — group disparity and intervals (scores + group labels, never a model);
2. :mod:`.text` — generated-text metrics (toxicity of continuations, group words, sentiment, diversity);
3. :mod:`.probability` — probability-based probes (CrowS-Pairs, pronoun probabilities; take a model);
4. :mod:`.embedding` — embedding-based tests (WEAT, SEAT).

Everything is importable from here: ``from debias_utils.metrics import group_disparity``.
"""
from .disparity import (Estimate, bootstrap_ci, disparity_within_axes, fisher_ci, group_disparity,
                        group_means, max_min_gap, min_max_ratio, paired_difference,
                        proportion_estimate, verdict)
from .text import (count_group_words, demographic_representation, distinct_n,
                   expected_maximum_toxicity, male_share, male_share_ci, max_per_prompt, sentiment,
                   sentiment_shares, toxic_fraction, toxicity_probability, toxicity_summary)
from .probability import (CrowsResult, crows_pairs_score, crows_summary, pronoun_correlation,
                          pronoun_probabilities)
from .embedding import (SEAT_TEMPLATES, WeatResult, sentence_embeddings, weat, weat_effect_size_ci,
                        weat_from_vectors, word_embeddings)

__all__ = ['CrowsResult', 'Estimate', 'SEAT_TEMPLATES', 'WeatResult', 'bootstrap_ci', 'count_group_words',
           'crows_pairs_score', 'crows_summary', 'demographic_representation', 'disparity_within_axes',
           'distinct_n', 'expected_maximum_toxicity', 'fisher_ci', 'group_disparity', 'group_means',
           'male_share', 'male_share_ci', 'max_min_gap', 'max_per_prompt', 'min_max_ratio',
           'paired_difference', 'pronoun_correlation', 'pronoun_probabilities', 'proportion_estimate',
           'sentence_embeddings', 'sentiment', 'sentiment_shares', 'toxic_fraction', 'toxicity_probability',
           'toxicity_summary', 'verdict', 'weat', 'weat_effect_size_ci', 'weat_from_vectors',
           'word_embeddings']
