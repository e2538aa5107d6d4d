"""Log lines: logfmt quoting, and the formatter that stamps the time once per second."""

from __future__ import annotations

import io
import logging
import logging.handlers
import re

import pytest

from myguard import logs


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("alice", "alice"),
        ("", '""'),
        ("two words", '"two words"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("a=b", '"a=b"'),
        ("line\nbreak", '"line\\nbreak"'),
        ("back\\slash x", '"back\\\\slash x"'),
        (42, "42"),
    ],
)
def test_values_are_quoted_when_they_would_break_the_line(value, shown):
    assert logs._value(value) == shown


@pytest.fixture()
def captured():
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    flags = ("_srcfile", "logThreads", "logProcesses", "logMultiprocessing")
    saved_flags = {name: getattr(logging, name) for name in flags}
    logs.setup("DEBUG")
    stream = io.StringIO()
    root.handlers[0].setStream(stream)
    yield stream
    root.handlers[:], level = saved
    root.setLevel(level)
    for name, value in saved_flags.items():
        setattr(logging, name, value)


def test_an_event_is_one_logfmt_line(captured):
    logs.event(logging.INFO, "login", session=7, user="bob smith", skipped=None)
    line = captured.getvalue()
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO myguard "
        r'event=login session=7 user="bob smith"\n',
        line,
    )


@pytest.mark.parametrize("created", [0.0, 1_764_000_000.5, 1_764_000_000.999, 1_764_000_001.001])
def test_the_cached_time_stamp_equals_the_standard_one(created):
    mine, standard = (
        logs._Formatter(),
        logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"),
    )
    for at in (created, created + 0.0005, created + 1.0):
        record = logging.LogRecord("myguard", logging.WARNING, "", 0, "event=x", None, None)
        record.created, record.msecs = at, int((at - int(at)) * 1000)
        assert mine.format(record) == standard.format(record)


def test_an_event_is_written_directly_as_the_formatter_would_write_it(captured, monkeypatch):
    monkeypatch.setattr(logs.time, "time", lambda: 1_764_000_000.25)  # LogRecord's clock too
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", root.handlers[:1])  # without pytest's own

    def dispatched(*args, **kwargs):
        raise AssertionError("went through the logging module")

    with monkeypatch.context() as patch:
        patch.setattr(logs.log, "log", dispatched)
        logs.event(logging.WARNING, "pool_full", backend="main db", waited=3)
    direct = captured.getvalue()
    assert direct.endswith(' WARNING myguard event=pool_full backend="main db" waited=3\n')
    root.addFilter(lambda record: True)  # someone else looks at records: no shortcut
    try:
        logs.event(logging.WARNING, "pool_full", backend="main db", waited=3)
    finally:
        root.filters.clear()
    assert captured.getvalue() == direct * 2


def test_other_handlers_still_get_every_event(captured):
    seen = logging.handlers.BufferingHandler(10)
    logging.getLogger().addHandler(seen)
    logs.event(logging.INFO, "login", session=1)
    assert [r.getMessage() for r in seen.buffer] == ["event=login session=1"]
    assert captured.getvalue().endswith("INFO myguard event=login session=1\n")


def test_events_below_the_level_are_not_written(captured):
    logging.getLogger().setLevel("WARNING")
    logs.event(logging.INFO, "login", session=1)
    assert captured.getvalue() == ""
