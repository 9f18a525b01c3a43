"""The user commands' first-hour edges, without servers: relative times, missing files, unwrapped output,
addresses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from provender import commands


def test_relative_start_as_the_readme_writes_it():
    args = commands.parser("ingest").parse_args(
        commands._attach_time_values(["--table", "t", "--start", "-2d", "--end", "-1h"])
    )
    now = datetime.now(UTC)
    assert abs(args.start - (now - timedelta(days=2))) < timedelta(seconds=5)
    assert abs(args.end - (now - timedelta(hours=1))) < timedelta(seconds=5)


def test_apply_of_a_missing_file_is_one_line_without_a_traceback(capsys, tmp_path):
    missing = tmp_path / "missing.yaml"
    assert commands.main("apply", ["-f", str(missing), "--core-url", "127.0.0.1:1"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == (
        f"provender apply: file: {str(missing)!r} is not valid; expected a readable YAML file "
        "(No such file or directory)"
    )


def test_a_url_with_a_scheme_says_what_an_address_is(capsys):
    assert commands.main("projects", ["list", "--core-url", "http://core.example:6565"]) == 1
    err = capsys.readouterr().err
    assert "Core URL: 'http://core.example:6565' is not valid; expected host:port with no scheme" in err
    assert "Traceback" not in err


def test_urls_in_tables_and_lines_are_never_broken(capsys):
    url = "file:///var/lib/provender/staging/" + "x" * 150 + "/driver.log"
    commands._table("jobs", ["id", "log"], [("job-" + "a" * 40, url)])
    commands.console.print(f"output: {url}")
    out = capsys.readouterr().out
    assert sum(url in line for line in out.splitlines()) == 2
