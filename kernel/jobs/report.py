"""How a Spark application reports its outcome on its output, and how a launcher reads it back from the log.

A job prints one line `PROVENDER_JOB_SUMMARY {json}` when it succeeds, and one line `PROVENDER_JOB_ERROR <message>`
before exiting non-zero when it fails on purpose; a stream job, which runs until cancelled, prints one line
`PROVENDER_STREAM_PROGRESS {json}` per micro-batch instead of a summary (the latest is its report). Launchers read the log: the error line, else the last
meaningful lines (a Python exception, Spark ERROR lines), become the job's error_message.
"""

from __future__ import annotations

import json
import re
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from provender.kernel.errors import ProvenderError

SUMMARY_PREFIX = "PROVENDER_JOB_SUMMARY "
PROGRESS_PREFIX = "PROVENDER_STREAM_PROGRESS "
ERROR_PREFIX = "PROVENDER_JOB_ERROR "
MAX_MESSAGE = 2000

# Spark's own log lines ("26/11/23 04:37:39 INFO SparkContext: ...") that say nothing about a failure.
_SPARK_NOISE = re.compile(r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d (INFO|WARN|DEBUG|TRACE) ")
_SPARK_ERROR = re.compile(r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d ERROR ")
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b.*")


def print_summary(summary: dict[str, Any]) -> None:
    print(SUMMARY_PREFIX + json.dumps(summary, sort_keys=True), flush=True)


def run_main(job: Callable[[Sequence[str]], dict[str, Any]], argv: Sequence[str]) -> int:
    """Run a job's main; on failure print the error line and return the exit code (2: bad input, 1: other)."""
    try:
        job(argv)
    except ProvenderError as e:
        print(ERROR_PREFIX + _one_line(str(e)), file=sys.stderr, flush=True)
        return 2
    except Exception as e:
        traceback.print_exc()
        print(ERROR_PREFIX + _one_line(f"{type(e).__name__}: {e}"), file=sys.stderr, flush=True)
        return 1
    return 0


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text[: MAX_MESSAGE - 3] + "..." if len(text) > MAX_MESSAGE else text


def read_tail(log: Path, max_bytes: int = 256_000) -> list[str]:
    try:
        with log.open("rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            return f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return []


def print_progress(progress: dict[str, Any]) -> None:
    print(PROGRESS_PREFIX + json.dumps(progress, sort_keys=True), flush=True)


def _latest(log: Path, prefix: str) -> dict[str, Any] | None:
    """The newest readable line with `prefix`. The JVM's own output may be glued onto the end of a line (it
    writes to the same log), so the JSON object at the line's start is read and the rest ignored."""
    for line in reversed(read_tail(log)):
        if line.startswith(prefix):
            try:
                value, _ = json.JSONDecoder().raw_decode(line[len(prefix) :])
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                return value
    return None


def find_summary(log: Path) -> dict[str, Any] | None:
    """A finished job's summary line; for a stream job, its latest progress line."""
    return _latest(log, SUMMARY_PREFIX) or _latest(log, PROGRESS_PREFIX)


def failure_reason(log: Path, max_lines: int = 5) -> str:
    """Why a job failed, from its log: its error line, else the last exception line(s) or Spark ERROR lines."""
    lines = read_tail(log)
    for line in reversed(lines):
        if line.startswith(ERROR_PREFIX):
            return line[len(ERROR_PREFIX) :].strip()
    for line in reversed(lines):
        if _EXCEPTION_LINE.match(line.strip()) and not line.startswith((" ", "\t")):
            return _one_line(line)
    meaningful = [
        ln
        for ln in lines
        if ln.strip() and not _SPARK_NOISE.match(ln) and not ln.lstrip().startswith(("at ", "... "))
    ]
    errors = [ln for ln in meaningful if _SPARK_ERROR.match(ln)]
    chosen = (errors or meaningful)[-max_lines:]
    return _one_line(" | ".join(chosen)) if chosen else ""
