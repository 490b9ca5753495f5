"""The job entry points' arguments: what `ray job submit ... python -m jobs.tune` accepts."""

from __future__ import annotations

import argparse

import pytest

from jobs.tune import interval, parse


def test_intervals_read_as_seconds() -> None:
    assert interval("90s") == 90
    assert interval("30m") == 1800
    assert interval("1h") == 3600
    assert interval("1.5d") == 129600
    for bad in ("1", "h", "1w", "-1h", "1 h 2"):
        with pytest.raises(argparse.ArgumentTypeError):
            interval(bad)


def test_tune_arguments() -> None:
    args = parse(["--usecase", "tfd", "--trials", "8", "--max-rows", "1000", "--every", "1h"])
    assert (args.usecase, args.trials, args.max_rows, args.every) == ("tfd", 8, 1000, 3600)
    assert parse(["--usecase", "eta"]).every is None
    with pytest.raises(SystemExit):
        parse(["--usecase", "nope"])
