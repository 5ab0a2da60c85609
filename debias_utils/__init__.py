"""debias_utils — the small package behind the debias-llm course.

Modules follow the course's data flow (the README's "The package" section draws it):
``assets`` and ``models`` load the LLM offline, ``lm`` computes log-probabilities and generates,
``groups`` holds the course's social groups, ``data`` fetches and reads the public benchmarks, ``toxicity`` scores text,
``words`` counts group words, ``metrics`` turns scores into bias numbers, ``decoding`` is method 1 (decoding
adjustment), ``gates`` / ``gate_training`` / ``pruning`` are method 2 (gated attention) and its pruning baseline,
``evaluate`` is the one generate → score loop, ``results`` / ``runner`` / ``cli`` save numbers and batch-run the
notebooks; ``checks`` holds the input checks every module shares.
"""
from .models import load_model, set_seed

__all__ = ["load_model", "set_seed"]
__version__ = "0.1.0"
