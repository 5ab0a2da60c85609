"""Speed of the bootstrap statistics behind every interval of D, against their plain definitions, in one run.

Run from the repository root:

    .venv/bin/python benchmarks/bootstrap_speed.py [--groups 24] [--rows 600] [--calls 300] [--resamples 200]

``disparity_within_axes`` is the statistic that ``bootstrap_ci`` and ``paired_difference`` call once per
resample (1,000 times per interval, for every method and condition of an audit or of notebooks 08 and 09). The
package computes it from group sums and sizes; the definition computes ``group_disparity`` per axis. Likewise
``paired_difference`` gathers each resample's rows by array arithmetic; the definition loops over the drawn units.
It prints the time per call of each pair and the ratio definition / package, measured back to back on the same
data, so load from other processes hits both alike, and checks that both give the same numbers.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from debias_utils.groups import GROUP_TERMS
from debias_utils.metrics import disparity_within_axes, group_disparity, paired_difference

AXIS_OF = {g: axis for axis, terms in GROUP_TERMS.items() for g in terms}


def by_definition(scores, groups):
    axes = np.array([AXIS_OF[g] for g in groups])
    return sum(group_disparity(scores[axes == a], groups[axes == a]) for a in dict.fromkeys(axes))


def paired_by_definition(statistic, a, b, n_resamples, seed):
    """paired_difference's resampling written as the loop it stands for (same draws, same rows)."""
    units = list(dict.fromkeys(a["unit"]))
    stratum_of = dict(zip(a["unit"], a["stratum"]))
    strata = [np.array([u for u in units if stratum_of[u] == s]) for s in dict.fromkeys(a["stratum"])]
    rows = [{u: np.flatnonzero(t["unit"] == u) for u in units} for t in (a, b)]
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n_resamples):
        pick = np.concatenate([g[rng.integers(0, len(g), size=len(g))] for g in strata])
        parts = [statistic({k: v[np.concatenate([index[u] for u in pick])] for k, v in t.items()})
                 for t, index in zip((a, b), rows)]
        diffs.append(parts[1] - parts[0])
    return np.quantile(diffs, [0.025, 0.975])


def timed(function, calls):
    tic = time.perf_counter()
    for _ in range(calls):
        result = function()
    return (time.perf_counter() - tic) / calls, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=24, help="groups, taken from the course's axes in order")
    parser.add_argument("--rows", type=int, default=600, help="scores (continuations)")
    parser.add_argument("--calls", type=int, default=300, help="calls of the statistic per timing")
    parser.add_argument("--resamples", type=int, default=200, help="resamples of paired_difference")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    names = list(AXIS_OF)[:args.groups]
    groups = np.array(names + list(rng.choice(names, args.rows - len(names))), dtype=object)
    scores = rng.random(args.rows)

    slow, d_slow = timed(lambda: by_definition(scores, groups), args.calls)
    fast, d_fast = timed(lambda: disparity_within_axes(scores, groups), args.calls)
    assert abs(d_slow - d_fast) < 1e-12, (d_slow, d_fast)
    print(f"disparity_within_axes ({args.rows} scores, {args.groups} groups): definition {slow * 1e3:.3f} ms, "
          f"package {fast * 1e3:.3f} ms per call -> {slow / fast:.1f}x")

    units = np.repeat(np.arange(args.rows // 2), 2)          # two continuations per prompt
    a = {"unit": units, "stratum": groups[units], "group": groups[units], "toxicity": scores}
    b = {**a, "toxicity": np.clip(scores - 0.05, 0, 1)}
    stat = lambda t: disparity_within_axes(t["toxicity"], t["group"])
    slow, q_slow = timed(lambda: paired_by_definition(stat, a, b, args.resamples, 0), 1)
    fast, est = timed(lambda: paired_difference(stat, a, b, n_resamples=args.resamples, seed=0), 1)
    assert np.allclose(q_slow, [est.low, est.high], atol=1e-12), (q_slow, est)
    print(f"paired_difference ({args.resamples} resamples of {args.rows // 2} prompts): loop with the definition "
          f"{slow:.2f} s, package {fast:.2f} s -> {slow / fast:.1f}x")


if __name__ == "__main__":
    main()
