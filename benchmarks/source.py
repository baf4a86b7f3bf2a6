"""Which `monitor` the benchmarks import and run: the project's, or a candidate copy's (BENCH_SOURCE).

Imported first by the other benchmark modules: it puts that tree first on `sys.path`, so the daemon
subprocess (`benchmarks.kit.harness` runs the `monitor` this process imported) and the in-process code
are the same.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def source_root() -> Path:
    """Where the daemon's `monitor` package is imported from: the project, or BENCH_SOURCE (a folder that
    holds a `monitor` package) to measure a candidate change in a copy of the tree before it lands."""
    return Path(os.environ.get("BENCH_SOURCE") or ROOT).resolve()


if str(source_root()) not in sys.path:
    sys.path.insert(0, str(source_root()))
if str(ROOT) not in sys.path:  # `benchmarks.kit` (the harness and generator) is always this project's
    sys.path.insert(1, str(ROOT))
