"""The command-line entry of a Spark application: parse its one argument, run it in a Spark session, stop it."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any, TypeVar

from pyspark.sql import SparkSession

from provender.jobs import sources
from provender.kernel.errors import InvalidArgument
from provender.kernel.jobs.args import read_argument, with_secrets

A = TypeVar("A")


def spark_main(
    argv: Sequence[str], parse: Callable[[str], A], run: Callable[[SparkSession, A], Any]
) -> dict[str, Any]:
    """`argv` is the job's JSON arguments (or @file); returns the run's summary as a dict."""
    if len(argv) != 1:
        raise InvalidArgument("command line", list(argv), "one argument: the job's JSON arguments")
    args = parse(read_argument(argv[0]))
    args = with_secrets(args, os.environ)  # Redis credentials from the environment, not the arguments
    spark = SparkSession.builder.config(map=sources.SESSION_CONF).getOrCreate()
    try:
        return asdict(run(spark, args))
    finally:
        spark.stop()
