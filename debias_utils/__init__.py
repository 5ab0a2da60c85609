"""debias_utils — the small package behind the debias-llm course.

Modules follow the course's data flow (see ``../shared/DESIGN.md`` in the course workspace):
``assets`` and ``models`` load the LLM offline, ``lm`` computes log-probabilities and generates,
``groups`` / ``data`` hold social groups and benchmark loaders, ``toxicity`` scores text,
``metrics`` turns scores into bias numbers, ``decoding`` and ``gates`` are the two debiasing methods,
``runner`` / ``cli`` batch-run the notebooks.
"""
from .models import load_model, set_seed

__all__ = ["load_model", "set_seed"]
__version__ = "0.1.0"
