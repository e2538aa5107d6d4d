"""The ``myguard`` command line."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from myguard import __version__
from myguard.approvals import cli as approvals_cli
from myguard.audit import cli as audit_cli
from myguard.config_error import ConfigError
from myguard.policy import cli as policy_cli


def _serve(args: argparse.Namespace) -> int:
    from myguard import logs
    from myguard.config import load_config

    logs.setup(args.log_level)
    config = load_config(args.config)
    if args.worker is not None or config.workers == 1:
        from myguard.server import run

        run(config, args.worker)
    else:
        from myguard.supervisor import run as supervise

        supervise(config, args.config, args.log_level)
    return 0


def _config_check(args: argparse.Namespace) -> int:
    from myguard.config import load_config
    from myguard.policy.engine import Policy

    config = load_config(args.file)
    policy = Policy.load(config.rules_file)
    names = ", ".join(
        f"{b.name} ({b.environment}) {b.listen[0]}:{b.listen[1]}" for b in config.backends
    )
    print(
        f"{args.file}: OK — backends: {names}; {len(policy.rules)} rules from {config.rules_file}"
    )
    return 0


def _users_add(args: argparse.Namespace) -> int:
    from myguard.identity.users_file import write_user

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"Password for {args.name}: ")
        if password != getpass.getpass("Again: "):
            print("myguard: passwords do not match", file=sys.stderr)
            return 1
    if not password:
        print("myguard: an empty password is not allowed", file=sys.stderr)
        return 1
    groups = [g for g in args.groups.split(",") if g] if args.groups else []
    write_user(Path(args.file), args.name, password, groups, fast_auth=not args.no_fast_auth)
    print(f"{args.file}: user {args.name} written (groups: {', '.join(groups) or 'none'})")
    return 0


def _reload(args: argparse.Namespace) -> int:
    import urllib.error
    import urllib.request

    from myguard.config import load_config

    config = load_config(args.config)
    if config.admin_listen is None:
        print(
            f"myguard: {args.config}: admin_listen is off; send SIGHUP to myguard instead",
            file=sys.stderr,
        )
        return 1
    host, port = config.admin_listen
    request = urllib.request.Request(f"http://{host}:{port}/reload", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            print(f"myguard: rules reloaded from {config.rules_file} ({response.status})")
            return 0
    except urllib.error.HTTPError as exc:
        print(
            f"myguard: reload refused ({exc.code}): the rules file is broken; the old rules stay in force (see the log)",
            file=sys.stderr,
        )
    except OSError as exc:
        print(f"myguard: cannot reach myguard at {host}:{port}: {exc}", file=sys.stderr)
    return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"myguard: config error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
