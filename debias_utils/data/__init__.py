"""The public bias benchmarks: where their files come from (:mod:`.sources`) and how to read them (:mod:`.loaders`).

Taught in ``notebooks/06_bias_metrics.ipynb``. ``from debias_utils.data import load_bold`` reads BOLD from the
cache (fetching it first when allowed); ``debias-llm download --benchmarks`` fills the cache.
"""
from .loaders import (BOLD_DOMAINS, CROWS_BIAS_TYPES, CROWS_COLUMNS, DEBIASWE_FILES, HOLISTIC_BIAS_FILES,
                      HOLISTIC_BIAS_VERSIONS, NO_GENDER, HolisticBias, check_pairs, holistic_bias_prompts, load_bold,
                      load_crows_pairs, load_debiaswe, load_holistic_bias)
from .sources import BENCHMARKS, Benchmark, BenchmarkFile, benchmarks_dir, download_benchmarks, fetch_benchmark

__all__ = ["BENCHMARKS", "BOLD_DOMAINS", "Benchmark", "BenchmarkFile", "CROWS_BIAS_TYPES", "CROWS_COLUMNS",
           "DEBIASWE_FILES", "HOLISTIC_BIAS_FILES", "HOLISTIC_BIAS_VERSIONS", "HolisticBias", "NO_GENDER",
           "benchmarks_dir", "check_pairs", "download_benchmarks", "fetch_benchmark", "holistic_bias_prompts",
           "load_bold", "load_crows_pairs", "load_debiaswe", "load_holistic_bias"]
