"""What a benchmark prints: its result lines, its progress, their statistics."""

# ruff: noqa: INP001
import math
import statistics
import sys
import time


def out(line: str) -> None:
    """Print one line to stdout, flushed (benchmarks run for minutes)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def note(line: str) -> None:
    """Print progress to stderr, so stdout holds only the results."""
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {line}\n")
    sys.stderr.flush()


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (p99 of 50 samples is the largest)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: list[float]) -> float:
    """Return the median."""
    return statistics.median(values)


def verdict(ok: bool) -> str:
    """Return the summary line's last word."""
    return "PASS" if ok else "MISS"
