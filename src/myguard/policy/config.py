"""Reading a rules file into compiled rules; every error names the file, the rule and the key."""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from myguard.analysis.kinds import valid_kind_name
from myguard.config_error import ConfigError
from myguard.policy.decision import ALLOW, APPROVE, BLOCK, MASK
from myguard.policy.globs import ColumnGlob, TableGlob, compile_glob
from myguard.policy.mask_spec import MaskSpec
from myguard.policy.rules import Identity, Rule, Target

T = TypeVar("T")

_TOP_KEYS = frozenset({"defaults", "tags", "rules"})
_DEFAULT_KEYS = frozenset({"action", "message"})
_RULE_KEYS = frozenset(
    {"name", "description", "when", "action", "message", "mask", "approval", "mode"}
)
_FLAGS = ("no_where", "opaque", "unparsed")
_WHEN_KEYS = frozenset(
    {"users", "groups", "not_groups", "environments", "backends", "sources", "programs"}
    | {"attributes", "kinds", "tables", "columns", "tags", "rows_over", *_FLAGS}
)
ACTIONS = (ALLOW, BLOCK, MASK, APPROVE)
DEFAULT_BLOCK_MESSAGE = "statement not allowed by policy"


@dataclass(frozen=True, slots=True)
class RulesFile:
    file: str
    rules: tuple[Rule, ...]
    tags: dict[str, tuple[ColumnGlob, ...]]
    default_action: str
    default_message: str


def load_file(path: str | Path) -> RulesFile:
    """Read and validate a rules file."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(file, "(file)", "a readable rules file", exc.strerror) from exc
    return parse_text(text, file)


def parse_text(text: str, file: str) -> RulesFile:
    """Validate rules-file text; ``file`` names it in errors."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, "(syntax)", "valid TOML", str(exc)) from exc
    _no_unknown(document, _TOP_KEYS, file, "")
    defaults = _table(document.get("defaults", {}), file, "defaults")
    _no_unknown(defaults, _DEFAULT_KEYS, file, "defaults.")
    default_action = defaults.get("action", BLOCK)
    if default_action not in (ALLOW, BLOCK):
        raise ConfigError(file, "defaults.action", "allow or block", default_action)
    default_message = _string(
        defaults.get("message", DEFAULT_BLOCK_MESSAGE), file, "defaults.message"
    )
    tags = _tags(_table(document.get("tags", {}), file, "tags"), file)
    raw_rules = document.get("rules", [])
    if not isinstance(raw_rules, list):
        raise ConfigError(file, "rules", "an array of tables ([[rules]])", raw_rules)
    rules: list[Rule] = []
    for index, raw in enumerate(raw_rules, start=1):
        rule = _rule(raw, index, tags, file)
        if any(r.name == rule.name for r in rules):
            raise ConfigError(file, f"rule '{rule.name}': name", "a name used by one rule only")
        rules.append(rule)
    return RulesFile(file, tuple(rules), tags, default_action, default_message)


def _tags(table: dict[str, Any], file: str) -> dict[str, tuple[ColumnGlob, ...]]:
    return {
        tag: _list(globs, file, f"tags.{tag}", _parsed(ColumnGlob.parse, file, f"tags.{tag}"))
        for tag, globs in table.items()
    }


def _rule(raw: Any, index: int, tags: dict[str, Any], file: str) -> Rule:
    where = f"rule #{index}"
    raw = _table(raw, file, where)
    if not isinstance(raw.get("name"), str) or not raw["name"].strip():
        raise ConfigError(file, f"{where}: name", "a non-empty string", raw.get("name"))
    where = f"rule '{raw['name']}'"
    _no_unknown(raw, _RULE_KEYS, file, f"{where}: ")
    action = raw.get("action")
    if action not in ACTIONS:
        raise ConfigError(file, f"{where}: action", "one of allow, block, mask, approve", action)
    mode = raw.get("mode", "enforce")
    if mode not in ("enforce", "observe"):
        raise ConfigError(file, f"{where}: mode", "enforce or observe", mode)
    for key, wanted in (("message", BLOCK), ("mask", MASK), ("approval", APPROVE)):
        if key in raw and action != wanted:
            raise ConfigError(file, f"{where}: {key}", f"no {key} unless action = {wanted!r}")
        if key not in raw and action == wanted:
            raise ConfigError(file, f"{where}: {key}", f"a {key} for action = {wanted!r}")
    when = _table(raw.get("when", {}), file, f"{where}: when")
    identity, target = _when(when, tags, file, f"{where}: when")
    return Rule(
        name=raw["name"],
        description=_string(raw.get("description", ""), file, f"{where}: description"),
        identity=identity,
        target=target,
        action=action,
        message=_string(raw.get("message", ""), file, f"{where}: message"),
        observe=mode == "observe",
        masks=_masks(raw["mask"], tags, file, f"{where}: mask") if action == MASK else (),
        approval=_approval(raw["approval"], file, f"{where}: approval")
        if action == APPROVE
        else None,
    )


def _when(
    when: dict[str, Any], tags: dict[str, Any], file: str, where: str
) -> tuple[Identity, Target]:
    _no_unknown(when, _WHEN_KEYS, file, f"{where}.")

    def strings(key: str) -> frozenset[str] | None:
        if key not in when:
            return None
        return frozenset(
            _list(when[key], file, f"{where}.{key}", _checked_string(file, f"{where}.{key}"))
        )

    def parsed(key: str, parse: Callable[[str], T]) -> tuple[T, ...] | None:
        if key not in when:
            return None
        return tuple(
            _list(when[key], file, f"{where}.{key}", _parsed(parse, file, f"{where}.{key}"))
        )

    for flag in _FLAGS:
        if flag in when and when[flag] is not True:
            raise ConfigError(
                file, f"{where}.{flag}", "true (leave the key out otherwise)", when[flag]
            )
    kinds = strings("kinds")
    for kind in kinds or ():
        if not valid_kind_name(kind):
            raise ConfigError(
                file, f"{where}.kinds", "statement kinds, kind:object or groups", kind
            )
    wanted_tags = strings("tags")
    for tag in wanted_tags or ():
        if tag not in tags:
            raise ConfigError(file, f"{where}.tags", "tags defined in [tags]", tag)
    identity = Identity(
        users=strings("users"),
        groups=strings("groups"),
        not_groups=strings("not_groups"),
        environments=strings("environments"),
        backends=strings("backends"),
        sources=parsed("sources", _network),
        programs=parsed("programs", compile_glob),
        attributes=_attributes(when, file, f"{where}.attributes"),
    )
    rows_over = when.get("rows_over")
    if rows_over is not None and (
        isinstance(rows_over, bool) or not isinstance(rows_over, int) or rows_over < 0
    ):
        raise ConfigError(file, f"{where}.rows_over", "a whole number of rows >= 0", rows_over)
    target = Target(
        rows_over=rows_over,
        kinds=kinds,
        tables=parsed("tables", TableGlob.parse),
        columns=parsed("columns", ColumnGlob.parse),
        tags=wanted_tags,
        no_where="no_where" in when,
        opaque="opaque" in when,
        unparsed="unparsed" in when,
    )
    return identity, target


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise ValueError("IP addresses or CIDR networks, e.g. 10.0.0.0/8") from exc


def _attributes(when: dict[str, Any], file: str, key: str) -> tuple | None:
    if "attributes" not in when:
        return None
    table = _table(when["attributes"], file, key)
    if not table:
        raise ConfigError(file, key, "a non-empty table of attribute name = glob")
    return tuple(
        (name, compile_glob(_string(glob, file, f"{key}.{name}"))) for name, glob in table.items()
    )


def _masks(raw: Any, tags: dict[str, Any], file: str, key: str) -> tuple[tuple[str, MaskSpec], ...]:
    table = _table(raw, file, key)
    if not table:
        raise ConfigError(file, key, "a non-empty table of tag or column glob = strategy")
    masks = []
    for target, spec in table.items():
        if "." in target:
            _parsed(ColumnGlob.parse, file, f"{key}.{target}")(target)
        elif target not in tags:
            raise ConfigError(file, f"{key}.{target}", "a tag defined in [tags] or db.table.column")
        masks.append((target, _parsed(MaskSpec.parse, file, f"{key}.{target}")(spec)))
    return tuple(masks)


def _approval(raw: Any, file: str, key: str) -> Any:
    # Imported here so rules files without approvals do not need the approvals package.
    from myguard.approvals.model import ApprovalPolicy

    return ApprovalPolicy.from_table(raw, file, key)


def _no_unknown(table: dict[str, Any], allowed: frozenset[str], file: str, prefix: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(file, f"{prefix}{unknown[0]}", f"one of {', '.join(sorted(allowed))}")


def _table(value: Any, file: str, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(file, key, "a table", value)
    return value


def _string(value: Any, file: str, key: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(file, key, "a string", value)
    return value


def _list(value: Any, file: str, key: str, item: Callable[[Any], T]) -> list[T]:
    if not isinstance(value, list) or not value:
        raise ConfigError(file, key, "a non-empty list", value)
    return [item(element) for element in value]


def _checked_string(file: str, key: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise ConfigError(file, key, "non-empty strings", value)
        return value

    return check


def _parsed(parse: Callable[[str], T], file: str, key: str) -> Callable[[Any], T]:
    """``parse`` with its ValueError turned into a ConfigError naming ``key``."""

    def check(value: Any) -> T:
        try:
            return parse(_checked_string(file, key)(value))
        except ValueError as exc:
            raise ConfigError(file, key, str(exc), value) from exc

    return check
