"""The course-authoring subcommands of ``labsupport``: ``exercises build|check`` and ``release``.

``exercises check`` compares ``exercises/`` with a fresh build, then grades every declared wrong
answer in local kernels (:mod:`labsupport.course.rehearsal`) unless ``--skip-wrong-answers``.

:func:`register` adds them to the command's sub-parsers (called once from ``labsupport.cli``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from labsupport.course import authoring, rehearsal, release


def _build(args: argparse.Namespace) -> int:
    try:
        built = authoring.build_exercises(args.root, tuple(args.names), force=args.force)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for item in built:
        print(f"{item.status:9} {item.exercise.relative_to(args.root)} "
              f"(from {item.solution.relative_to(args.root)})")
    return 0


def _check(args: argparse.Namespace) -> int:
    try:
        problems = authoring.check_exercises(args.root, tuple(args.names))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s): exercises out of step with solutions/, or tests "
              "that read what the student controls.", file=sys.stderr)
        return 1
    print("exercises/ is in step with solutions/.")
    if args.skip_wrong_answers:
        return 0
    return _check_wrong_answers(args)


def _check_wrong_answers(args: argparse.Namespace) -> int:
    failures = []
    for solution in authoring.solution_paths(args.root, tuple(args.names)):
        result = rehearsal.rehearse(solution, workers=args.workers, progress=True)
        for verdict in result.verdicts:
            if verdict.ok:
                print(f"ok        {solution.name}: {verdict}")
        failures.extend(result.failures)
        if not result.verdicts:
            print(f"warning   {solution.name} declares no wrong answers (cells tagged "
                  f"{authoring.WRONG_TAG!r}); nothing proves its tests refuse a plausible "
                  "mistake.", file=sys.stderr)
    for failure in failures:
        print(f"too high  {failure}", file=sys.stderr)
    if failures:
        print(f"{len(failures)} problem(s): a declared wrong answer must earn less than its "
              "max_share of the question's points (under half). Make the tests it passes "
              "stricter, add a hidden case where the mistake and the answer disagree, or weight "
              "the tests that grade the skill.", file=sys.stderr)
        return 1
    print("every declared wrong answer scores under its max_share.")
    return 0


def _release(args: argparse.Namespace) -> int:
    changed = release.uncommitted(args.root)
    if changed:
        shown = ", ".join(changed[:10]) + (f" and {len(changed) - 10} more"
                                          if len(changed) > 10 else "")
        print(f"warning: {len(changed)} file(s) about to ship differ from the last commit: "
              f"{shown}", file=sys.stderr)
    try:
        plan = release.write_release(args.root, args.out_dir, force=args.force)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for path in plan.withheld:
        print(f"withheld  {path} (instructor-only: holds solution or hidden-test text)")
    print(f"released {len(plan.files)} files to {args.out_dir} (no solutions, no hidden tests)")
    return 0


def register(commands: argparse._SubParsersAction) -> None:  # pylint: disable=protected-access
    """Add ``exercises build``, ``exercises check`` and ``release`` to ``commands``."""
    exercises = commands.add_parser(
        "exercises", help="generate exercises/ from solutions/ (build) or verify it (check)")
    actions = exercises.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = actions.add_parser("build", help="write exercises/NN_topic.ipynb from each solution")
    build.add_argument("names", nargs="*", metavar="NAME",
                       help="solutions to build, e.g. 01_cicd_for_ml (default: all)")
    build.add_argument("--force", action="store_true",
                       help="overwrite exercise files that were not generated (hand-written)")
    build.set_defaults(handler=_build)
    check = actions.add_parser(
        "check", help="fail when an exercise is stale, missing or orphaned, or when a declared "
                      "wrong answer scores its max_share or more (runs kernels)")
    check.add_argument("names", nargs="*", metavar="NAME",
                       help="exercises to check, e.g. 06_deployment_strategies (default: all; "
                            "the comparison with solutions/ then also looks for orphans)")
    check.add_argument("--skip-wrong-answers", action="store_true",
                       help="only compare exercises/ with solutions/ (no kernels)")
    check.add_argument("--workers", type=int, default=None,
                       help="kernels run at once for the wrong answers (default: cores)")
    check.set_defaults(handler=_check)
    for parser in (build, check):
        parser.add_argument("--root", type=Path, default=Path("."),
                            help="the lab's top folder (default: the current one)")

    out = commands.add_parser(
        "release", help="write the student copy of the lab: no solutions, no hidden tests")
    out.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    out.add_argument("--root", type=Path, default=Path("."),
                     help="the lab's top folder (default: the current one)")
    out.add_argument("--force", action="store_true", help="write into a non-empty OUT_DIR")
    out.set_defaults(handler=_release)
