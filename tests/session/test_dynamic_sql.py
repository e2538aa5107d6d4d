"""``PREPARE name FROM @v``: which texts qualify, and the statement decided in their place."""

import pytest

from myguard.analysis.analyzer import analyze
from myguard.session.dynamic_sql import source_variable, with_source


@pytest.mark.parametrize(
    ("text", "variable"),
    [
        ("PREPARE s FROM @q", "@q"),
        ("  prepare `my s` from @`my q` ; ", "@`my q`"),
        ("PREPARE s FROM @'q'", "@'q'"),
        ("PREPARE s FROM 'SELECT 1'", None),  # a literal is analysed as it is
        ("SET @q = 'x'; PREPARE s FROM @q", None),  # the variable may change before it
        ("PREPARE s FROM @q; SELECT 1", None),
        ("PREPARE s /* c */ FROM @q", None),  # stays opaque
        ("PREPARE s FROM @@q", None),
    ],
)
def test_source_variable(text, variable):
    assert source_variable(text) == variable


def test_the_decided_text_holds_the_value_as_a_literal():
    value = "DELETE FROM t WHERE a = 'it''s' OR b = '\\\\'"
    text = with_source("PREPARE s FROM @q", value)
    assert text == "PREPARE s FROM 'DELETE FROM t WHERE a = ''it''''s'' OR b = ''\\\\\\\\'''"
    (statement,) = analyze(text, "shop")
    assert statement.kind == "delete" and statement.prepared and not statement.opaque
    assert {t.name for t in statement.writes} == {"t"}


def test_a_text_that_does_not_qualify_is_refused():
    with pytest.raises(ValueError):
        with_source("SELECT 1", "SELECT 2")
