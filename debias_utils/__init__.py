"""debias_utils — the small package behind the debias-llm course.

Modules follow the course's data flow (the README's "The package" section draws it):
``assets`` and ``models`` load the LLM offline, ``lm`` computes log-probabilities and generates,
``groups`` holds the course's social groups, ``data`` fetches and reads the public benchmarks, ``toxicity`` scores text,
``metrics`` turns scores into bias numbers, ``decoding`` and ``gates`` are the two debiasing methods,
``runner`` / ``cli`` batch-run the notebooks.
"""
from .models import load_model, set_seed

__all__ = ["load_model", "set_seed"]
__version__ = "0.1.0"
