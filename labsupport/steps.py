"""The steps lesson 05's workflows run, as ``labsupport model ...`` commands.

A GitHub Actions job is a list of shell commands; these are the ones lesson 05's workflows run, so
that every step of those workflows exists and can be run on a laptop exactly as CI runs it:

=================  ======================================================================
validate-data      check CSVs of sensor readings against lesson 01's schema
train              train lesson 01's model from a config file (optionally cross-validated);
                   save it with its training time
evaluate           score a saved model on a test CSV; write the metrics JSON
compare            candidate vs baseline metrics: write the Markdown table, fail on regression
gate               fail when a metric is missing or below its minimum
=================  ======================================================================

Exit status: 0 when the step passes, 1 when the data, gate or comparison fails (the check did its
job), 2 when the step could not run (a missing file, bad JSON, a bad config) — with a sentence on
stderr saying what to fix. :func:`register` adds the commands to ``labsupport`` (see
``labsupport.cli``).
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import yaml

from labsupport import modelcheck, pipeline, validation


class StepError(Exception):
    """A step could not run (missing file, unreadable input); the message says what to fix."""


def _existing(path: Path, what: str) -> Path:
    if not path.is_file():
        raise StepError(f"{what} {path} does not exist (or is not a file).")
    return path


def read_json(path: Path, what: str) -> dict:
    """Read a JSON object from ``path``; :class:`StepError` when missing or not a JSON object."""
    text = _existing(path, what).read_text(encoding="utf-8")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise StepError(f"{what} {path} is not valid JSON: {error.msg} at line {error.lineno}, "
                        f"column {error.colno}.") from error
    if not isinstance(value, dict):
        raise StepError(f"{what} {path} must hold a JSON object ({{...}}), "
                        f"got {type(value).__name__}.")
    return value


def read_csv(path: Path, what: str) -> pd.DataFrame:
    """Read a CSV file; :class:`StepError` when missing, empty or unreadable."""
    try:
        return pd.read_csv(_existing(path, what))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise StepError(f"{what} {path} is not a readable CSV file: {error}") from error


def read_config(path: Path) -> tuple[str, dict]:
    """Read a training config (YAML or JSON): the feature code and the model's parameters.

    The file is a mapping with ``params`` (keyword arguments of ``LogisticRegression``) and,
    optionally, ``features``: the path of a ``features.py`` defining ``add_features(frame)``,
    relative to the config file (default: lesson 01's example features).
    """
    text = _existing(path, "config file").read_text(encoding="utf-8")
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise StepError(f"config file {path} is not valid YAML: {error}") from error
    if not isinstance(config, dict) or not isinstance(config.get("params", {}), dict):
        raise StepError(f"config file {path} must be a mapping such as "
                        "'params: {C: 1.0, max_iter: 500}'.")
    unknown = sorted(set(config) - {"params", "features"})
    if unknown:
        raise StepError(f"config file {path} has unknown keys {unknown}; "
                        "expected 'params' and optionally 'features'.")
    code = pipeline.EXAMPLE_CODE
    if "features" in config:
        code = _existing(path.parent / str(config["features"]), "features file").read_text()
    return code, dict(config.get("params", {}))


def _sidecar(model_path: Path) -> Path:
    """Where ``train`` records how the model was trained (next to the model file)."""
    return model_path.with_suffix(".train.json")


def _validate_data(args: argparse.Namespace) -> int:
    valid = True
    for path in args.data:
        report = validation.validate(read_csv(path, "data file"), pipeline.SENSOR_SCHEMA)
        print(f"{path}: {report}")
        valid = valid and report.ok
    return 0 if valid else 1


def _train(args: argparse.Namespace) -> int:
    code, params = read_config(args.config)
    data = read_csv(args.data, "training data")
    report = validation.validate(data, pipeline.SENSOR_SCHEMA)
    if not report.ok:
        raise StepError(f"training data {args.data} is invalid: {report}")
    start = time.perf_counter()
    try:
        model = pipeline.fit(code, data, params)
    except (TypeError, ValueError) as error:
        raise StepError(f"training failed with the config {args.config}: {error}") from error
    seconds = time.perf_counter() - start
    record = {"train_seconds": seconds, "n_train": len(data), "params": params}
    if args.cv_folds:
        scores = pipeline.cross_validate(code, data, params, n_splits=args.cv_folds)
        record["cv_accuracy"] = list(scores.scores)
        print(scores)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(pickle.dumps(model))
    _sidecar(args.output).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    print(f"trained on {len(data)} rows in {seconds:.3f} s -> {args.output} "
          f"({args.output.stat().st_size} bytes)")
    return 0


def _load_model(path: Path) -> pipeline.Model:
    try:
        model = pickle.loads(_existing(path, "model file").read_bytes())
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as error:
        raise StepError(f"model file {path} is not a model saved by `labsupport model train` "
                        f"({error}).") from error
    if not isinstance(model, pipeline.Model):
        raise StepError(f"model file {path} holds a {type(model).__name__}, not a model saved by "
                        "`labsupport model train`.")
    return model


def _evaluate(args: argparse.Namespace) -> int:
    model = _load_model(args.model)
    test = read_csv(args.data, "test data")
    sidecar = _sidecar(args.model)
    train_seconds = read_json(sidecar, "training record")["train_seconds"] \
        if sidecar.is_file() else None
    try:
        evaluation = modelcheck.evaluate(model, test, pipeline.LABEL, args.model,
                                         train_seconds=train_seconds)
    except (KeyError, ValueError) as error:
        raise StepError(f"cannot evaluate {args.model} on {args.data}: {error}") from error
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(evaluation.to_dict(), indent=2) + "\n")
    shown = ", ".join(f"{name} {evaluation.metrics[name]:.3f}" for name in modelcheck.METRICS)
    print(f"{args.model} on {len(test)} rows: {shown} -> {args.output}")
    return 0


def _metrics(path: Path, name: str) -> dict:
    metrics = read_json(path, f"{name} metrics")
    try:
        return modelcheck.check_metrics(metrics, f"{name} ({path})")
    except (TypeError, ValueError) as error:
        raise StepError(str(error)) from error


def _compare(args: argparse.Namespace) -> int:
    baseline, candidate = _metrics(args.baseline, "baseline"), _metrics(args.candidate, "candidate")
    try:
        comparison = modelcheck.compare(baseline, candidate, tolerance=args.tolerance,
                                        alpha=args.alpha)
    except ValueError as error:
        raise StepError(str(error)) from error
    markdown = modelcheck.to_markdown(comparison)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(markdown, encoding="utf-8")
    print(markdown, end="")
    return 0 if comparison.passed else 1


def _folds(text: str) -> int:
    if not text.isdigit() or int(text) < 2:
        raise argparse.ArgumentTypeError(f"expected a whole number of folds >= 2, got {text!r}")
    return int(text)


def _minimum(text: str) -> tuple[str, float]:
    name, _, value = text.partition("=")
    try:
        threshold = float(value)
    except ValueError:
        threshold = None
    if name not in modelcheck.METRICS or threshold is None:
        raise argparse.ArgumentTypeError(
            f"expected METRIC=VALUE with METRIC one of {list(modelcheck.METRICS)}, got {text!r}")
    return name, threshold


def _gate(args: argparse.Namespace) -> int:
    metrics = read_json(args.metrics, "metrics")
    problems = []
    for name, threshold in args.minimums:
        value = metrics.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{name} is missing from {args.metrics}")
        elif value < threshold:
            problems.append(f"{name} {value:.3f} is below the minimum {threshold:g}")
        else:
            print(f"{name} {value:.3f} >= {threshold:g}")
    for problem in problems:
        print(f"gate failed: {problem}")
    if not problems:
        print("gate passed")
    return 1 if problems else 0


def _guarded(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except StepError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    return run


HELP = ("the steps lesson 05's workflows run: validate data, train, evaluate, compare with the "
        "baseline, gate")


def register(commands: argparse._SubParsersAction) -> None:  # pylint: disable=protected-access
    """Add ``model validate-data|train|evaluate|compare|gate`` to the ``labsupport`` command."""
    _add_actions(commands.add_parser("model", help=HELP))


def main(argv: list[str]) -> int:
    """Run ``labsupport model ARGV...`` without building the rest of the command (faster start).

    ``labsupport.cli`` calls it for ``labsupport model ACTION ...``: every CI step is a new process,
    and this one does not import the course tooling.
    """
    parser = argparse.ArgumentParser(prog="labsupport model", description=HELP)
    _add_actions(parser)
    args = parser.parse_args(argv)
    return args.handler(args)


def _add_actions(model: argparse.ArgumentParser) -> None:
    actions = model.add_subparsers(dest="action", metavar="ACTION", required=True)

    check = actions.add_parser("validate-data",
                               help="check a CSV of sensor readings against the lesson's schema")
    check.add_argument("data", type=Path, nargs="+", metavar="DATA_CSV")
    check.set_defaults(handler=_guarded(_validate_data))

    train = actions.add_parser("train", help="train the model from a config file")
    train.add_argument("--config", type=Path, required=True,
                       help="YAML or JSON: 'params' (LogisticRegression arguments), optionally "
                            "'features' (a features.py next to the config)")
    train.add_argument("--data", type=Path, required=True, help="training CSV")
    train.add_argument("--output", type=Path, required=True,
                       help="model file to write (its training record goes next to it, "
                            "MODEL.train.json)")
    train.add_argument("--cv-folds", type=_folds, default=0, metavar="K",
                       help="also cross-validate on K stratified folds of the training data and "
                            "record the fold accuracies (K >= 2; default: no cross-validation)")
    train.set_defaults(handler=_guarded(_train))

    evaluate = actions.add_parser("evaluate",
                                  help="score a model on a test CSV, write metrics JSON")
    evaluate.add_argument("--model", type=Path, required=True, help="model file from `train`")
    evaluate.add_argument("--data", type=Path, required=True, help="labelled test CSV")
    evaluate.add_argument("--output", type=Path, required=True, help="metrics JSON to write")
    evaluate.set_defaults(handler=_guarded(_evaluate))

    compare = actions.add_parser(
        "compare", help="compare candidate with baseline metrics; exit 1 on a regression")
    compare.add_argument("--baseline", type=Path, required=True, help="baseline metrics JSON")
    compare.add_argument("--candidate", type=Path, required=True, help="candidate metrics JSON")
    compare.add_argument("--output", type=Path, help="write the Markdown table here as well")
    compare.add_argument("--tolerance", type=float, default=0.01,
                         help="largest acceptable drop of any metric (default 0.01)")
    compare.add_argument("--alpha", type=float, default=0.05,
                         help="level of the one-sided test against noise (default 0.05)")
    compare.set_defaults(handler=_guarded(_compare))

    gate = actions.add_parser("gate", help="exit 1 when a metric is missing or below a minimum")
    gate.add_argument("metrics", type=Path, metavar="METRICS_JSON")
    gate.add_argument("--min", dest="minimums", type=_minimum, action="append", required=True,
                      metavar="METRIC=VALUE", help="e.g. --min accuracy=0.8 (repeatable)")
    gate.set_defaults(handler=_guarded(_gate))
