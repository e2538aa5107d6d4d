"""Every rules-file error names the file, the rule and the key."""

from __future__ import annotations

import pytest

from myguard.config_error import ConfigError
from myguard.policy.engine import Policy
from myguard.policy.mask_spec import MaskSpec

BLOCK = 'action = "block"\nmessage = "m"\n'


def rule(body: str, name: str = "r1") -> str:
    return f'[[rules]]\nname = "{name}"\n{body}\n'


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("x = [", "(syntax)"),
        ("surprise = 1", "surprise"),
        ('[defaults]\naction = "mask"', "defaults.action"),
        ("[defaults]\nmessage = 3", "defaults.message"),
        ("[defaults]\ncolour = 1", "defaults.colour"),
        ('[tags]\npii = "shop.c.ssn"', "tags.pii"),
        ('[tags]\npii = ["shop.ssn"]', "tags.pii"),
        ("[tags]\npii = []", "tags.pii"),
        ('rules = "nope"', "rules"),
        ('[[rules]]\naction = "allow"', "rule #1: name"),
        (rule('action = "allow"') + rule('action = "allow"'), "rule 'r1': name"),
        (rule('action = "deny"'), "rule 'r1': action"),
        (rule(BLOCK + 'mode = "dry-run"'), "rule 'r1': mode"),
        (rule('action = "block"'), "rule 'r1': message"),
        (rule('action = "allow"\nmessage = "m"'), "rule 'r1': message"),
        (rule('action = "mask"'), "rule 'r1': mask"),
        (rule('action = "allow"\nmask = { x = "redact" }'), "rule 'r1': mask"),
        (rule('action = "approve"'), "rule 'r1': approval"),
        (rule(BLOCK + "approval = {}"), "rule 'r1': approval"),
        (rule(BLOCK + "colour = 1"), "rule 'r1': colour"),
        (rule(BLOCK + "description = 1"), "rule 'r1': description"),
        (rule(BLOCK + 'when = "all"'), "rule 'r1': when"),
        (rule(BLOCK + "when = { colour = 1 }"), "rule 'r1': when.colour"),
        (rule(BLOCK + 'when = { users = "bob" }'), "rule 'r1': when.users"),
        (rule(BLOCK + "when = { groups = [] }"), "rule 'r1': when.groups"),
        (rule(BLOCK + "when = { groups = [1] }"), "rule 'r1': when.groups"),
        (rule(BLOCK + 'when = { kinds = ["drop table"] }'), "rule 'r1': when.kinds"),
        (rule(BLOCK + 'when = { kinds = ["drop:cake"] }'), "rule 'r1': when.kinds"),
        (rule(BLOCK + 'when = { kinds = ["show:engin"] }'), "rule 'r1': when.kinds"),
        (rule(BLOCK + 'when = { tables = ["customers"] }'), "rule 'r1': when.tables"),
        (rule(BLOCK + 'when = { columns = ["shop.ssn"] }'), "rule 'r1': when.columns"),
        (rule(BLOCK + 'when = { tags = ["pii"] }'), "rule 'r1': when.tags"),
        (rule(BLOCK + 'when = { sources = ["10.0.0.0/33"] }'), "rule 'r1': when.sources"),
        (rule(BLOCK + 'when = { sources = ["office"] }'), "rule 'r1': when.sources"),
        (rule(BLOCK + "when = { no_where = false }"), "rule 'r1': when.no_where"),
        (rule(BLOCK + 'when = { opaque = "yes" }'), "rule 'r1': when.opaque"),
        (rule(BLOCK + "when = { unparsed = 1 }"), "rule 'r1': when.unparsed"),
        (rule(BLOCK + "when = { attributes = {} }"), "rule 'r1': when.attributes"),
        (rule(BLOCK + "when = { attributes = { app = 1 } }"), "rule 'r1': when.attributes.app"),
        (rule('action = "mask"\nmask = {}'), "rule 'r1': mask"),
        (rule('action = "mask"\nmask = { pii = "redact" }'), "rule 'r1': mask.pii"),
        (rule('action = "mask"\nmask = { "a.b" = "redact" }'), "rule 'r1': mask.a.b"),
        (rule('action = "mask"\nmask = { "a.b.c" = "scramble" }'), "rule 'r1': mask.a.b.c"),
        (rule('action = "mask"\nmask = { "a.b.c" = "partial(x)" }'), "rule 'r1': mask.a.b.c"),
        (rule('action = "mask"\nmask = { "a.b.c" = "redact(3)" }'), "rule 'r1': mask.a.b.c"),
        (rule('action = "mask"\nmask = { "a.b.c" = 4 }'), "rule 'r1': mask.a.b.c"),
        (
            rule('action = "approve"\napproval = { approver_groups = [] }'),
            "rule 'r1': approval.approver_groups",
        ),
        (
            rule('action = "approve"\napproval = { approver_groups = ["dba"], scope = "x" }'),
            "rule 'r1': approval.scope",
        ),
    ],
)
def test_config_errors_name_file_rule_and_key(text, key):
    with pytest.raises(ConfigError) as caught:
        Policy.from_text(text, "bad.toml")
    assert caught.value.file == "bad.toml"
    assert caught.value.key == key
    assert str(caught.value).startswith(f"bad.toml: {key}: expected ")


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as caught:
        Policy.load(tmp_path / "nope.toml")
    assert caught.value.file.endswith("nope.toml")


def test_load_reads_a_file(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text('[defaults]\naction = "allow"\n' + rule(BLOCK))
    policy = Policy.load(path)
    assert [r.name for r in policy.rules] == ["r1"]
    assert policy.file == str(path)


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("redact", MaskSpec("redact")),
        ("email", MaskSpec("email")),
        ("hash", MaskSpec("hash")),
        ("null", MaskSpec("null")),
        ("partial(4)", MaskSpec("partial", 4)),
        (" partial( 0 ) ", MaskSpec("partial", 0)),
        ("value(n/a)", MaskSpec("value", "n/a")),
        ("value()", MaskSpec("value", "")),
        ("value(a (b))", MaskSpec("value", "a (b)")),
    ],
)
def test_mask_spec_parse(text, spec):
    assert MaskSpec.parse(text) == spec
    assert MaskSpec.parse(str(spec)) == spec


@pytest.mark.parametrize(
    "text", ["", "REDACT", "partial", "partial(-1)", "partial(2.5)", "hash(1)", "value"]
)
def test_mask_spec_rejects(text):
    with pytest.raises(ValueError):
        MaskSpec.parse(text)
