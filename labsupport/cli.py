"""The ``labsupport`` console command.

Each subcommand is a small function registered in :func:`build_parser`; course tooling adds its
own subcommands there (``exercises``, ``release``, ``grade``, ``export``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from labsupport import __version__, doctor, steps


def _run_doctor(_args: argparse.Namespace) -> int:
    report = doctor.diagnose()
    print(report.render())
    return 0 if report.ok else 1


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``labsupport`` command."""
    parser = argparse.ArgumentParser(
        prog="labsupport",
        description="Support tooling for the CI/CD-for-ML Jupyter lab.",
    )
    parser.add_argument("--version", action="version", version=f"labsupport {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    doctor_cmd = commands.add_parser(
        "doctor",
        help="check that JupyterLab and the widget front end match (why a widget does not render)",
    )
    doctor_cmd.set_defaults(handler=_run_doctor)
    steps.register(commands)
    # Course tooling registers its subcommands below, one call per module. Imported here, not at
    # the top: `labsupport model ...` (one process per CI step) does not pay for nbformat.
    # pylint: disable-next=import-outside-toplevel
    from labsupport.course import commands as course_commands, exports, grading, review
    course_commands.register(commands)
    grading.register(commands)
    exports.register(commands)
    review.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``labsupport`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["model"] and not {"-h", "--help"} & set(argv[1:2]):
        return steps.main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = vars(args).get("handler")
    if handler is None:
        parser.print_help()
        return 0
    return handler(args)


if __name__ == "__main__":  # pragma: no cover - exercised through the console script
    sys.exit(main())
