"""Every ``myguard`` command on bad input: one error line per problem, a documented exit
code (2 usage or config, 1 runtime), never a traceback. Run as real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "conf" / "myguard.toml"
RULES = ROOT / "conf" / "rules.toml"

USAGE, RUNTIME = 2, 1


def myguard(
    *argv: str, stdin: str = "", env: dict | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "myguard", *argv],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def assert_one_line_errors(result: subprocess.CompletedProcess[str], code: int) -> list[str]:
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == code, (result.returncode, result.stderr)
    lines = result.stderr.splitlines()
    assert lines, "an error must be reported"
    # The audit and approvals commands prefix their own name ("myguard audit: ...").
    assert all(line.startswith("myguard") for line in lines), lines
    assert "got None" not in result.stderr
    return lines


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("cli-errors")
    latin1 = base / "latin1.toml"
    latin1.write_bytes(b'rules_file = "r\xe9gles.toml"\n')
    broken = base / "broken.toml"
    broken.write_text("workers = [\n")
    not_a_trail = base / "plain-file"
    not_a_trail.write_text("x")
    return {"dir": base, "latin1": latin1, "broken": broken, "file": not_a_trail}


# (argv, exit code, text the error names); {dir}, {latin1}, {broken}, {file} are filled in.
CASES = [
    (["serve", "--config", "{dir}"], USAGE, "not a directory"),
    (["serve", "--config", "{latin1}"], USAGE, "UTF-8"),
    (["serve"], USAGE, "--config"),
    (["config", "check", "{dir}"], USAGE, "{dir}: (file): expected a config file"),
    (["config", "check", "{latin1}"], USAGE, "byte 0xe9 at offset 15"),
    (["config", "check", "{broken}"], USAGE, "valid TOML"),
    (["config", "check", "{dir}/missing.toml"], USAGE, "an existing config file"),
    (["config"], USAGE, "config_command"),
    (
        ["users", "add", "", "--file", "{dir}/users.toml", "--password-stdin", "--groups", "bob"],
        USAGE,
        "name ''",
    ),
    (["users", "add", "bob", "--file", "{dir}/users.toml"], USAGE, "--password-stdin"),
    (["users", "add", "carol", "--file", "{dir}/users.toml", "--password-stdin"], USAGE, "empty"),
    (["users", "add", "bob", "--file", "{dir}", "--password-stdin"], USAGE, "{dir}"),
    (["reload", "--config", "{dir}"], USAGE, "not a directory"),
    (["reload", "--config", "{latin1}"], USAGE, "UTF-8"),
    (["rules", "check", "{dir}"], USAGE, "a readable rules file"),
    (["rules", "check", "{latin1}"], USAGE, "UTF-8"),
    (
        ["rules", "explain", "--rules", "{broken}", "--user", "u", "--env", "e", "SELECT 1"],
        USAGE,
        "TOML",
    ),
    (["rules", "explain", "--rules", str(RULES)], USAGE, "required"),
    (
        ["rules", "replay", "--rules", str(RULES), "--audit", "{dir}", "--since", "soon"],
        USAGE,
        "--since",
    ),
    (["rules", "replay", "--rules", "{latin1}", "--audit", "{dir}"], USAGE, "UTF-8"),
    (["rules", "replay", "--rules", str(RULES), "--audit", "{file}"], RUNTIME, "{file}"),
    (["audit", "verify", "{file}"], USAGE, "{file}"),
    (["audit", "stats", "--config", "{dir}"], USAGE, "not a directory"),
    (["audit", "export", "--format", "xml", "{dir}"], USAGE, "xml"),
    (["audit", "tail", "-n", "many", "{dir}"], USAGE, "many"),
    (["approvals", "list", "--store", "nowhere:x"], USAGE, "nowhere:x"),
    (["approvals", "show", "one", "--store", "sqlite:{dir}/a.db"], USAGE, "one"),
    (["approvals", "deny", "1", "--store", "sqlite:{dir}/a.db"], USAGE, "--reason"),
    (["approvals", "list", "--store", "sqlite:{dir}"], RUNTIME, "database"),
    (["nonsense"], USAGE, "nonsense"),
]


@pytest.mark.parametrize(("argv", "code", "names"), CASES, ids=lambda v: str(v)[:60])
def test_bad_input_is_one_line_and_a_documented_code(files, argv, code, names):
    fill = {k: str(v) for k, v in files.items()}
    # A password on stdin for the users add cases that mention bob.
    result = myguard(*(a.format(**fill) for a in argv), stdin="pw\n" if "bob" in argv else "")
    lines = assert_one_line_errors(result, code)
    assert names.format(**fill) in result.stderr, lines


def test_users_add_with_stdin_closed(files):
    for extra in ([], ["--password-stdin"]):
        result = subprocess.run(
            [sys.executable, "-m", "myguard", "users", "add", "bob", "--file", "x.toml", *extra],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            cwd=files["dir"],
            # Closes stdin (fd 0) itself, as `myguard ... <&-` does.
            preexec_fn=lambda: os.close(0),
        )
        (line,) = assert_one_line_errors(result, USAGE)
        assert line.startswith("myguard: error: users add: no ")
    assert not (files["dir"] / "x.toml").exists()


def test_config_errors_all_reported_in_one_run(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'rules_file = 3\nworkers = "many"\nlisten_port = 1\n'
        '[identity]\nsource = "ldap"\n'
        '[[backends]]\nname = "a"\nlisten = "nowhere"\npassword = "inline"\n'
    )
    lines = assert_one_line_errors(myguard("config", "check", str(bad)), USAGE)
    assert all(line.startswith(f"myguard: error: {bad}: ") for line in lines)
    keys = [line.split(": ")[3] for line in lines]
    assert sorted(keys) == sorted(
        [
            "rules_file",
            "audit.directory",
            "backends[0].password",
            "backends[0].environment",
            "backends[0].listen",
            "backends[0].upstream",
            "backends[0].user",
            "backends[0].password_env",
            "identity.ldap",
            "workers",
            "listen_port",
        ]
    ), lines
    assert (
        f"myguard: error: {bad}: audit.directory: expected a string (required), but it is missing"
        in lines
    )


def test_pool_config_errors_name_file_key_and_expectation(tmp_path):
    bad = tmp_path / "pool.toml"
    bad.write_text(
        'rules_file = "r.toml"\nhandshake_timeout = 5\n[audit]\nenabled = false\n[identity]\nusers_file = "u.toml"\n'
        '[[backends]]\nname = "a"\nenvironment = "e"\nlisten = "127.0.0.1:1"\n'
        'upstream = "127.0.0.1:2"\nuser = "u"\npassword_env = "X"\n'
        "[backends.pool]\nmin_idle = 9\nmax = 4\nidle_timeout = 600\nmax_lifetime = 60\n"
        'wait_timeout = 5\nsize = 3\nenabled = "yes"\n'
    )
    lines = assert_one_line_errors(myguard("config", "check", str(bad)), USAGE)
    by_key = {line.split(": ")[3]: line for line in lines}
    assert sorted(by_key) == [
        "backends[0].pool.enabled",
        "backends[0].pool.max_lifetime",
        "backends[0].pool.min_idle",
        "backends[0].pool.size",
        "backends[0].pool.wait_timeout",
    ], lines
    assert by_key["backends[0].pool.min_idle"] == (
        f"myguard: error: {bad}: backends[0].pool.min_idle: expected an integer <= max (4), got 9"
    )
    assert "expected true or false, got 'yes'" in by_key["backends[0].pool.enabled"]
    assert "below handshake_timeout (5)" in by_key["backends[0].pool.wait_timeout"]
    assert "a number >= idle_timeout (600)" in by_key["backends[0].pool.max_lifetime"]


def test_example_config_checks_without_its_secrets():
    env = {k: v for k, v in os.environ.items() if k != "MYGUARD_SHOP_PASSWORD"}
    result = myguard("config", "check", str(EXAMPLE), env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{EXAMPLE}: OK")
    (warning,) = result.stderr.splitlines()
    assert warning.startswith("myguard: warning: ")
    assert "backends[0].password_env" in warning and "MYGUARD_SHOP_PASSWORD" in warning


def test_serve_still_needs_its_secrets(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MYGUARD_SHOP_PASSWORD"}
    lines = assert_one_line_errors(myguard("serve", "--config", str(EXAMPLE), env=env), USAGE)
    assert lines == [
        f"myguard: error: {EXAMPLE}: backends[0].password_env: "
        "expected environment variable MYGUARD_SHOP_PASSWORD to be set"
    ]


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        [
            "rules",
            "explain",
            "--rules",
            str(RULES),
            "--user",
            "u",
            "--env",
            "production",
            "SELECT 1",
        ],
        ["config", "check", str(EXAMPLE)],
    ],
)
def test_a_reader_that_goes_away_is_no_error(argv):
    """``myguard ... | head``: the pipe closes before myguard writes."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "myguard", *argv],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            env={**os.environ, "MYGUARD_SHOP_PASSWORD": "x"},
        )
    finally:
        os.close(write_end)
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr
    assert result.returncode == 0
