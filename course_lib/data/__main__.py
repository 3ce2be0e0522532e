"""Command line of the data layer.

    python -m course_lib.data list                     real datasets and offline sets, present or not
    python -m course_lib.data prepare [--only NAME] [--force] [--scale S] [--jobs N]
    python -m course_lib.data download NAME [NAME ...]   fetch and verify real datasets now (any profile)
    python -m course_lib.data miniature [--serve | --run CMD ...]   tests: the real datasets' layouts in miniature
    python -m course_lib.data system-packages [--missing | --install]
        uses every tool and voice the builders run (a word per voice, a note through the sound
        font) and prints OK/FAIL per tool with the Debian packages; exit status 1 if one fails.
        --missing: only the packages whose check fails, on one line.
        --install: apt-get install those (as root on Debian/Ubuntu, else print the command),
        then check again.

Notebook: 00_welcome
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from course_lib.data import offline


def _size(n: object) -> str:
    return f"{n / 1e9:.1f} GB" if isinstance(n, (int, float)) and n >= 1e8 else (
        f"{n / 1e6:.0f} MB" if isinstance(n, (int, float)) else str(n or ""))


def _list() -> int:
    from course_lib.data.download import describe_datasets

    from course_lib.runtime import data_root

    rows = describe_datasets(data_root())
    keys = ("name", "status", "size", "offline_fallback", "task")
    table = [[str(r.get(k, "")) if k != "size" else _size(r.get(k)) for k in keys] for r in rows]
    widths = [max([len(k)] + [len(t[i]) for t in table]) for i, k in enumerate(keys)]
    print("Real datasets (downloaded into the cache when possible):")
    print("  " + "  ".join(k.ljust(w) for k, w in zip(keys, widths)))
    for t in table:
        print("  " + "  ".join(v.ljust(w) for v, w in zip(t, widths)))
    print(f"Offline sets in {data_root() / 'offline'} (python -m course_lib.data prepare):")
    for name in offline.OFFLINE_SETS:
        try:
            man = offline.read_manifest(offline.offline_dir(name))
        except FileNotFoundError:
            print(f"  {name:<20} not built")
            continue
        per_split = ", ".join(f"{s} {sum(c.values())}" for s, c in man["counts"].items())
        print(f"  {name:<20} built: {per_split} ({man['synthetic']})")
    return 0


def _system_packages() -> int:
    """Print the check-by-use report, the packages involved, and the fix when something fails."""
    results = offline.check_system_tools()
    print("System tools the offline builders run, checked by use:")
    print(offline.format_report(results))
    print(f"Debian packages: {' '.join(sorted(set(offline.SYSTEM_PACKAGES.values())))}")
    missing = offline.failed_packages(results)
    if missing:
        print(offline.install_hint(missing))
        return 1
    return 0


def _download(names: list[str]) -> int:
    from course_lib.data import download

    failed = 0
    for name in names:
        try:
            print(f"{name}: {download.fetch(name, progress=sys.stderr.isatty())}")
        except download.DatasetUnavailable as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m course_lib.data", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="real datasets and offline sets")
    p = sub.add_parser("prepare", help="build the offline sets")
    p.add_argument("--only", action="append", choices=sorted(offline.OFFLINE_SETS),
                   help="build only this set (repeatable)")
    p.add_argument("--force", action="store_true", help="rebuild even if the set verifies")
    p.add_argument("--scale", type=float, default=1.0, help="fraction of the full size (tests: 0.05)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                   help="sets built at once, one process each (default: every core)")
    sp = sub.add_parser("system-packages",
                        help="check by use the tools and voices the builders need, and their packages")
    sp.add_argument("--missing", action="store_true",
                    help="print only the packages whose check fails here")
    sp.add_argument("--install", action="store_true",
                    help="install those with apt (as root on Debian/Ubuntu), else say how; check again")
    dp = sub.add_parser("download", help="download and verify real datasets now, whatever the profile")
    from course_lib.data.registry import DATASETS

    dp.add_argument("names", nargs="+", choices=sorted(DATASETS), metavar="NAME",
                    help=f"one or more of: {', '.join(sorted(DATASETS))}")
    mp = sub.add_parser("miniature", help="tests: build (and serve) miniature archives of the real datasets")
    from course_lib.data import miniature

    miniature.add_arguments(mp)
    args = ap.parse_args(argv)
    if args.cmd == "list":
        return _list()
    if args.cmd == "miniature":
        return miniature.run(args)
    if args.cmd == "download":
        return _download(args.names)
    if args.cmd == "system-packages" and args.install:
        return 0 if offline.install_system_packages() else 1
    if args.cmd == "system-packages" and args.missing:
        print(" ".join(sorted(set(offline.missing_system_packages().values()))))
        return 0
    if args.cmd == "system-packages":
        return _system_packages()
    t0 = time.time()
    try:
        # progress bars only on a terminal: in CI logs they are thousands of carriage returns
        offline.prepare(args.only, force=args.force, scale=args.scale, seed=args.seed,
                        progress=sys.stderr.isatty(), jobs=args.jobs)
    except offline.OfflineBuildError as exc:
        print(f"prepare failed: {exc}", file=sys.stderr)
        return 1
    print(f"prepare: done in {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
