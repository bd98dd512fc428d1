"""Run every ``benchmarks/bench_*.py`` module's ``main()`` in turn (``make bench``).

Each benchmark measures its own baseline in the same run and prints ratios against it, so the
figures mean something on any machine. Pass names to run a subset:
``python -m benchmarks notebooks``.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    """Run the selected benchmarks (all by default); return a process exit status."""
    names = sorted(p.stem.removeprefix("bench_") for p in Path(__file__).parent.glob("bench_*.py"))
    selected = argv or names
    unknown = sorted(set(selected) - set(names))
    if unknown:
        print(f"unknown benchmark(s) {unknown}; available: {names}", file=sys.stderr)
        return 2
    for name in selected:
        print(f"\n=== benchmark: {name} ===", flush=True)
        importlib.import_module(f"benchmarks.bench_{name}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
