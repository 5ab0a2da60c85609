"""The methods an audit compares: the original model, a decoding rule (method 1), or a gate file (method 2).

``--method original``, ``--method decoding:kl`` (any rule of :data:`debias_utils.decoding.RULES`, optionally with a
strength, ``decoding:kl:0.5``) and ``--method gates:FILE`` (a file written by :func:`debias_utils.gates.save_gates`).
Every method runs on the same prompts, seeds and sampler. Used by :func:`debias_utils.audit.audit`.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

#: The strength each rule runs at unless one is given: the values notebook 09 compares (notebook 07 tunes them).
DEFAULT_STRENGTHS = {"static": 1.0, "proportional": 4.0, "integral": 1.0, "kl": 1.0, "quota": 1.0}


@dataclass(frozen=True)
class Method:
    """One method of an audit. ``kind`` is "original", "decoding" or "gates"."""

    spec: str
    kind: str
    rule: str | None = None
    strength: float | None = None
    path: Path | None = None

    @property
    def changes_weights(self) -> bool:
        """Gates change what the model computes; a logits processor only changes how tokens are chosen."""
        return self.kind == "gates"


def parse_method(spec: str) -> Method:
    """A method from its command-line spelling, or a clear error that lists the three forms.

    Example: ``parse_method("decoding:kl")`` → ``Method("decoding:kl", "decoding", "kl", 1.0)``.
    """
    from ..decoding import RULES

    forms = "original, decoding:RULE[:STRENGTH] (RULE one of " + ", ".join(RULES) + "), or gates:FILE"
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"a method is one of: {forms}")
    if spec == "original":
        return Method(spec, "original")
    kind, _, rest = spec.partition(":")
    if kind == "decoding":
        rule, _, strength = rest.partition(":")
        if rule not in RULES:
            raise ValueError(f"unknown decoding rule {rule!r} in {spec!r}; a method is one of: {forms}")
        try:
            value = float(strength) if strength else DEFAULT_STRENGTHS[rule]
        except ValueError:
            raise ValueError(f"the strength in {spec!r} is not a number") from None
        return Method(spec, "decoding", rule=rule, strength=value)
    if kind == "gates":
        path = Path(rest)
        if not rest or not path.is_file():
            raise ValueError(f"gate file {rest!r} of {spec!r} does not exist; pass a file written by save_gates, "
                             "e.g. gates:data/gates/smollm2_token.pt")
        return Method(spec, "gates", path=path)
    raise ValueError(f"unknown method {spec!r}; a method is one of: {forms}")


def check_methods(specs, model) -> list[Method]:
    """Parse every method, put ``original`` first (the others are compared with it), refuse duplicates, and try
    each gate file on ``model`` now — a file trained for another model fails before any work is done."""
    from ..gates import load_gates, remove_gates

    if isinstance(specs, str):
        specs = [specs]
    methods = [parse_method(s) for s in (specs or ["original"])]
    if len({m.spec for m in methods}) != len(methods):
        raise ValueError(f"a method is listed twice in {[m.spec for m in methods]}")
    methods = [Method("original", "original")] + [m for m in methods if m.kind != "original"]
    for method in methods:
        if method.kind == "gates":
            try:
                load_gates(model, method.path)
            except ValueError as error:
                raise ValueError(f"--method {method.spec}: {error}") from None
            remove_gates(model)
    return methods


@contextmanager
def applied(method: Method, model, tokenizer):
    """Inside the block the model behaves as ``method``; yields a factory of fresh logits processors (or None).

    Decoding rules keep counts across a run, so every generation call gets a new processor from the factory.
    """
    from ..decoding import GroupBalanceProcessor
    from ..gates import load_gates, remove_gates
    from ..groups import GENDER_WORDS

    if method.kind == "decoding":
        extra = {"boost": "female"} if method.rule == "static" else {}

        def factory():
            return GroupBalanceProcessor(tokenizer, GENDER_WORDS, rule=method.rule, strength=method.strength, **extra)
        yield factory
    elif method.kind == "gates":
        load_gates(model, method.path)
        try:
            yield None
        finally:
            remove_gates(model)
    else:
        yield None
