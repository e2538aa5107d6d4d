"""``myguard rules check`` / ``explain`` through a parser built like the top-level CLI."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

from myguard.policy.cli import add_commands

RULES = str(Path(__file__).resolve().parents[2] / "conf" / "rules.toml")


def run(*argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="myguard")
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    out = io.StringIO()
    return args.func(args, out), out.getvalue()


def test_check_ok():
    code, out = run("rules", "check", RULES)
    assert code == 0
    assert out.startswith("OK: ")


def test_check_error_names_file_rule_and_key(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[rules]]\nname = "r"\naction = "block"\nmessage = "m"\nwhen = { kinds = ["nope"] }\n'
    )
    code, _ = run("rules", "check", str(bad))
    assert code == 2
    assert f"myguard: error: {bad}: rule 'r': when.kinds: expected" in capsys.readouterr().err


def test_explain_prints_analysis_and_decision():
    code, out = run(
        "rules",
        "explain",
        "--rules",
        RULES,
        "--user",
        "u",
        "--groups",
        "analysts,x",
        "--env",
        "production",
        "--db",
        "shop",
        "SELECT email FROM customers; DELETE FROM orders WHERE 1=1",
    )
    assert code == 0
    assert "kind:      select" in out
    assert "columns:   shop.customers.email" in out
    assert "tags:      pii" in out
    assert "where:     tautology" in out
    assert "decision: block (rule 'no-unbounded-writes')" in out
    assert "client sees: myguard: blocked by rule 'no-unbounded-writes': " in out


def test_explain_mask_approve_and_opaque():
    _, out = run(
        "rules",
        "explain",
        "--rules",
        RULES,
        "--user",
        "u",
        "--groups",
        "analysts",
        "--env",
        "staging",
        "--db",
        "shop",
        "SELECT ssn FROM customers",
    )
    assert "decision: mask (rule 'mask-pii-for-analysts')" in out
    assert "mask *.*.ssn: partial(4)" in out
    _, out = run(
        "rules",
        "explain",
        "--rules",
        RULES,
        "--user",
        "u",
        "--env",
        "production",
        "--db",
        "shop",
        "ALTER TABLE t ADD c INT",
    )
    assert "approval by: dba (1 needed)" in out
    _, out = run(
        "rules", "explain", "--rules", RULES, "--user", "u", "--env", "production", "CALL p()"
    )
    assert "opaque:    yes" in out


def test_explain_with_bad_rules_file(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[defaults]\naction = 3\n")
    code, _ = run("rules", "explain", "--rules", str(bad), "--user", "u", "--env", "e", "SELECT 1")
    assert code == 2 and "defaults.action" in capsys.readouterr().err
