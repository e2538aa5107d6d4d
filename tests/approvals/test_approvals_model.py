import pytest

from myguard.approvals.model import ApprovalPolicy
from myguard.config_error import ConfigError

KEY = "rules.big-delete.approval"


def test_from_table_defaults_and_full():
    assert ApprovalPolicy.from_table({"approver_groups": ["dba"]}, "f.toml", KEY) == ApprovalPolicy(
        approver_groups=frozenset({"dba"})
    )
    policy = ApprovalPolicy.from_table(
        {
            "approver_groups": ["dba", "leads"],
            "min_approvals": 2,
            "hold_seconds": 30,
            "scope": "window",
            "window_seconds": 900,
        },
        "f.toml",
        KEY,
    )
    assert policy.min_approvals == 2 and policy.hold_seconds == 30.0
    assert policy.window_seconds == 900.0 and policy.granted_uses is None
    count = ApprovalPolicy.from_table(
        {"approver_groups": ["dba"], "scope": "count", "scope_count": 5}, "f.toml", KEY
    )
    assert count.granted_uses == 5
    assert ApprovalPolicy.from_dict(count.to_dict()) == count


@pytest.mark.parametrize(
    ("table", "bad_key"),
    [
        ({}, "approver_groups"),
        ({"approver_groups": []}, "approver_groups"),
        ({"approver_groups": "dba"}, "approver_groups"),
        ({"approver_groups": ["dba", 3]}, "approver_groups"),
        ({"approver_groups": ["dba"], "min_approvals": 0}, "min_approvals"),
        ({"approver_groups": ["dba"], "min_approvals": True}, "min_approvals"),
        ({"approver_groups": ["dba"], "min_approvals": 1.5}, "min_approvals"),
        ({"approver_groups": ["dba"], "hold_seconds": 0}, "hold_seconds"),
        ({"approver_groups": ["dba"], "hold_seconds": "60"}, "hold_seconds"),
        ({"approver_groups": ["dba"], "hold_seconds": float("inf")}, "hold_seconds"),
        ({"approver_groups": ["dba"], "scope": "forever"}, "scope"),
        ({"approver_groups": ["dba"], "scope": "count"}, "scope_count"),
        ({"approver_groups": ["dba"], "scope": "count", "scope_count": 0}, "scope_count"),
        ({"approver_groups": ["dba"], "scope_count": 3}, "scope_count"),
        ({"approver_groups": ["dba"], "scope": "window"}, "window_seconds"),
        ({"approver_groups": ["dba"], "window_seconds": 60}, "window_seconds"),
        ({"approver_groups": ["dba"], "max_rows": 10}, "max_rows"),
    ],
)
def test_from_table_errors_name_the_full_key(table, bad_key):
    with pytest.raises(ConfigError) as raised:
        ApprovalPolicy.from_table(table, "myguard.toml", KEY)
    assert raised.value.file == "myguard.toml"
    assert raised.value.key == f"{KEY}.{bad_key}"
    assert str(raised.value).startswith(f"myguard.toml: {KEY}.{bad_key}: expected ")


def test_from_table_rejects_a_non_table():
    with pytest.raises(ConfigError) as raised:
        ApprovalPolicy.from_table(["dba"], "f.toml", KEY)
    assert raised.value.key == KEY
