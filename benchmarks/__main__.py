"""python -m benchmarks [--only NAME] [--clients N] [--repeat N]"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sqlite3
import sys
import time
from pathlib import Path

from . import Report

# Scenario name -> module in this package.
SCENARIOS = {
    "generate": "generate",
    "import": "client_import",
    "startup": "startup",
    "remind": "remind",
    "uploads": "uploads",
    "api": "api",
    "dashboard": "dashboard",
}
HEADER = ["Scenario", "Baseline", "monthlydocs", "Ratio", "Goal", "Result"]
RESULTS = Path(__file__).parent / "results" / "latest.txt"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--only",
        choices=SCENARIOS,
        action="append",
        help="Run only this scenario (repeatable).",
    )
    parser.add_argument(
        "--clients",
        type=int,
        default=10_000,
        help="Clients (and CSV rows) per scenario (default 10000).",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=5,
        help="Repetitions per measurement; the median is kept.",
    )
    args = parser.parse_args()

    report = Report()
    for name in (name for name in SCENARIOS if not args.only or name in args.only):
        print(f"{name}...", file=sys.stderr, flush=True)
        module = importlib.import_module(f".{SCENARIOS[name]}", __package__)
        module.run(report, args.clients, args.repeat)

    text = "\n".join(
        [
            f"monthlydocs benchmarks, {time.strftime('%Y-%m-%d %H:%M')}, "
            f"median of {args.repeat} runs",
            *machine(),
            "",
            *format_table(report),
            *report.notes,
            "",
        ]
    )
    print(text)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(text, encoding="utf-8")
    print(f"Written to {RESULTS}")


def machine() -> list[str]:
    return [
        f"CPU: {cpu_model()}, {os.cpu_count()} cores",
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"{platform.system()} {platform.release()}",
    ]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def format_table(report: Report) -> list[str]:
    rows = [HEADER, *(line.cells() for line in report.lines)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    out = [
        " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
        for row in rows
    ]
    out.insert(1, "-+-".join("-" * w for w in widths))
    return out


if __name__ == "__main__":
    main()
