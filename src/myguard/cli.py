"""The ``myguard`` command line.

Exit codes: 0 success, 1 a runtime failure (cannot listen, cannot reach myguard, a file
cannot be written), 2 bad usage or configuration. Errors are one line each, starting
``myguard: error:``; never a traceback.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import warnings
from pathlib import Path
from typing import NoReturn

from myguard import __version__
from myguard.approvals import cli as approvals_cli
from myguard.audit import AuditUnavailable
from myguard.audit import cli as audit_cli
from myguard.config_error import ConfigError, ConfigErrors
from myguard.policy import cli as policy_cli

EXIT_RUNTIME = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """Bad input on the command line or standard input: reported, exit 2."""


class Parser(argparse.ArgumentParser):
    """argparse, with its errors as one ``myguard: error:`` line (sub-commands inherit it)."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("myguard").strip()
        where = f"{command}: " if command else ""
        self.exit(EXIT_USAGE, f"myguard: error: {where}{message} (see {self.prog} --help)\n")


def _serve(args: argparse.Namespace) -> int:
    from myguard import logs
    from myguard.config import load_config
    from myguard.tls import with_default_tls

    logs.setup(args.log_level)
    # Made by the first process (single or supervisor), before any worker starts.
    config = with_default_tls(load_config(args.config), announce=args.worker is None)
    if args.worker is not None or config.workers == 1:
        from myguard.server import run

        run(config, args.worker)
    else:
        from myguard.supervisor import run as supervise

        supervise(config, args.config, args.log_level)
    return 0


def _config_check(args: argparse.Namespace) -> int:
    from myguard.config import check_config

    # Secrets belong to the machine that serves: here a missing one is only a warning.
    config, notes = check_config(args.file, secrets_required=False)
    policy = policy_cli.load_rules(config.rules_file)
    for warning in notes:
        print(f"myguard: warning: {warning}", file=sys.stderr)
    names = ", ".join(
        f"{b.name} ({b.environment}) {b.listen[0]}:{b.listen[1]}" for b in config.backends
    )
    print(
        f"{args.file}: OK — backends: {names}; {len(policy.rules)} rules from {config.rules_file}"
    )
    return 0


def _users_add(args: argparse.Namespace) -> int:
    from myguard.identity.users_file import write_user

    password = _read_password(args)
    if not password:
        raise UsageError("users add: an empty password is not allowed")
    groups = [g for g in args.groups.split(",") if g] if args.groups else []
    try:
        write_user(Path(args.file), args.name, password, groups, fast_auth=not args.no_fast_auth)
    except ValueError as exc:  # the user name
        raise UsageError(f"users add: {exc}") from None
    print(f"{args.file}: user {args.name} written (groups: {', '.join(groups) or 'none'})")
    return 0


def _read_password(args: argparse.Namespace) -> str:
    if sys.stdin is None:
        raise UsageError("users add: no password: standard input is closed")
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    # Without a terminal getpass would echo the password: refuse rather than warn.
    with warnings.catch_warnings():
        warnings.simplefilter("error", getpass.GetPassWarning)
        try:
            password = getpass.getpass(f"Password for {args.name}: ")
            if password != getpass.getpass("Again: "):
                raise UsageError("users add: the passwords do not match")
        except (EOFError, getpass.GetPassWarning):
            raise UsageError(
                "users add: no terminal to ask for the password (pipe it with --password-stdin)"
            ) from None
    return password


def _reload(args: argparse.Namespace) -> int:
    import urllib.error
    import urllib.request

    from myguard.config import check_config

    # Only admin_listen is needed: not the backends' secrets.
    config, _ = check_config(args.config, secrets_required=False)
    if config.admin_listen is None:
        print(
            f"myguard: error: {args.config}: admin_listen is off; send SIGHUP to myguard instead",
            file=sys.stderr,
        )
        return EXIT_RUNTIME
    host, port = config.admin_listen
    request = urllib.request.Request(f"http://{host}:{port}/reload", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            print(f"myguard: rules reloaded from {config.rules_file} ({response.status})")
            return 0
    except urllib.error.HTTPError as exc:
        print(
            f"myguard: error: reload refused ({exc.code}): the rules file is broken; the old rules stay in force (see the log)",
            file=sys.stderr,
        )
    except OSError as exc:
        print(f"myguard: error: cannot reach myguard at {host}:{port}: {exc}", file=sys.stderr)
    return EXIT_RUNTIME


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="myguard", description="Identity-aware governance proxy for MySQL and MariaDB"
    )
    parser.add_argument("--version", action="version", version=f"myguard {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the proxy")
    serve.add_argument("--config", required=True, help="path to myguard.toml")
    serve.add_argument("--log-level", default="INFO")
    # Set by the supervisor for the processes it starts.
    serve.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    serve.set_defaults(func=_serve)

    config = sub.add_parser("config", help="configuration tools").add_subparsers(
        dest="config_command", required=True
    )
    check = config.add_parser("check", help="validate a config file")
    check.add_argument("file")
    check.set_defaults(func=_config_check)

    users = sub.add_parser("users", help="manage the users file").add_subparsers(
        dest="users_command", required=True
    )
    add = users.add_parser("add", help="add or replace a user")
    add.add_argument("name")
    add.add_argument("--file", required=True, help="the users file (created if missing)")
    add.add_argument("--groups", default="", help="comma-separated group names")
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    add.add_argument(
        "--no-fast-auth",
        action="store_true",
        help="keep only the scrypt hash: clients must send the password over TLS or RSA at every login",
    )
    add.set_defaults(func=_users_add)

    reload = sub.add_parser("reload", help="reload the rules file of a running myguard")
    reload.add_argument("--config", required=True, help="path to myguard.toml (for admin_listen)")
    reload.set_defaults(func=_reload)

    policy_cli.add_commands(sub)
    audit_cli.add_commands(sub)
    approvals_cli.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        # Inside: --help into a closed pipe is a broken pipe too.
        args = build_parser().parse_args(argv)
        code = args.func(args)
        # A reader that went away (| head) shows up here rather than at exit.
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # As the Python docs advise: stdout to /dev/null, so the flush at exit is quiet too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 130
    except ConfigError as exc:
        for error in exc.errors if isinstance(exc, ConfigErrors) else [exc]:
            _error(str(error))
        return EXIT_USAGE
    except UsageError as exc:
        _error(str(exc))
        return EXIT_USAGE
    except AuditUnavailable as exc:  # e.g. the audit directory is another writer's
        _error(str(exc))
        return EXIT_RUNTIME
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        _error(f"{where}{exc.strerror or exc}")
        return EXIT_RUNTIME
    except Exception as exc:  # e.g. a database driver's error: still one line
        _error(f"{type(exc).__name__}: {exc}")
        return EXIT_RUNTIME


def _error(message: str) -> None:
    print(f"myguard: error: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
