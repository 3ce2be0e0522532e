"""Command line of the course library.

    python -m course_lib doctor     one screen: versions against the lock, device and precision,
                                    system tools checked by use, data cache, Colab/Drive; every
                                    problem with the command that fixes it (exit status 1 if any)

The data layer has its own: ``python -m course_lib.data --help``.

Notebook: 00_welcome
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m course_lib", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("doctor", help="check this machine for the course (versions, device, tools, data)")
    args = ap.parse_args(argv)
    if args.cmd == "doctor":
        from course_lib import doctor

        return doctor.main()
    return 2


if __name__ == "__main__":
    sys.exit(main())
