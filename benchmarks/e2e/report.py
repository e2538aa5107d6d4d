"""Summaries (medians, ratios within a repeat), the targets check, JSON and Markdown files."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from pathlib import Path
from statistics import median

Run = dict[str, object]


def _med(values: list[float]) -> float | None:
    return round(median(values), 3) if values else None


def _group(runs: list[Run], *keys: str) -> dict[tuple[object, ...], list[Run]]:
    out: dict[tuple[object, ...], list[Run]] = defaultdict(list)
    for run in runs:
        if "error" not in run:
            out[tuple(run[k] for k in keys)].append(run)
    return out


def ratio(runs: list[Run], field: str, key: str, name: str, base: str) -> float | None:
    """Median over repeats of ``name``/``base`` for ``field``, pairing runs of the same repeat."""
    by_rep: dict[object, dict[object, float]] = defaultdict(dict)
    for run in runs:
        if "error" not in run and field in run:
            by_rep[(run["repeat"], run.get(key))][run["target"]] = float(run[field])  # type: ignore[arg-type]
    pairs = [v[name] / v[base] for v in by_rep.values() if name in v and v.get(base)]
    return _med(pairs)


def sysbench_summary(runs: list[Run], bases: tuple[str, ...]) -> list[Run]:
    rows = []
    for (workload, target), group in _group(runs, "workload", "target").items():
        row: Run = {
            "workload": workload,
            "target": target,
            "qps": _med([float(r["qps"]) for r in group]),  # type: ignore[arg-type]
            "p95_ms": _med([float(r["p95_ms"]) for r in group]),  # type: ignore[arg-type]
            "errors": sum(int(r["errors"]) for r in group),  # type: ignore[call-overload]
            "foreign_cpu_pct": _med([float(r.get("foreign_cpu_pct", 0)) for r in group]),  # type: ignore[arg-type]
            "cpu_us_per_query": _med(
                [float(r["cpu_us_per_query"]) for r in group if "cpu_us_per_query" in r]  # type: ignore[arg-type]
            ),
        }
        same = [r for r in runs if r.get("workload") == workload]
        for base in bases:
            row[f"vs_{base}"] = ratio(same, "qps", "workload", str(target), base)
        rows.append(row)
    return rows


def transfer_summary(runs: list[Run]) -> list[Run]:
    rows = []
    for (client, target), group in _group(runs, "client", "target").items():
        same = [r for r in runs if r.get("client") == client]
        rows.append({
            "client": client,
            "target": target,
            "wall_s": _med([float(r["wall_s"]) for r in group]),  # type: ignore[arg-type]
            "mb_per_s": _med([float(r["mb_per_s"]) for r in group]),  # type: ignore[arg-type]
            "rows_per_s": _med([float(r["rows_per_s"]) for r in group]),  # type: ignore[arg-type]
            "target_cpu_s": _med([float(r["target_cpu_s"]) for r in group if "target_cpu_s" in r]),  # type: ignore[arg-type]
            # Throughput relative to direct: direct wall / this wall, same repeat.
            "vs_direct": ratio(same, "rows_per_s", "client", str(target), "direct"),
        })  # fmt: skip
    return rows


def connect_summary(runs: list[Run]) -> list[dict[str, object]]:
    """Connections/s, CPU per connection and the ratio to direct, per target."""
    return [
        {"target": t, "per_s": _med([float(r["per_s"]) for r in g]),  # type: ignore[arg-type]
         "target_cpu_us_per_conn": _med([float(r["target_cpu_us_per_conn"]) for r in g
                                         if "target_cpu_us_per_conn" in r]),  # type: ignore[arg-type]
         "vs_direct": ratio(runs, "per_s", "connectors", str(t), "direct")}
        for (t,), g in _group(runs, "target").items()
    ]  # fmt: skip


def summarize(results: dict[str, object]) -> dict[str, object]:
    s: dict[str, object] = {}
    if "sysbench" in results:
        s["sysbench"] = sysbench_summary(results["sysbench"], ("direct", "haproxy", "relay"))  # type: ignore[arg-type]
    if "audit" in results:
        s["audit"] = sysbench_summary(results["audit"], ("audit fsync=off", "audit disabled"))  # type: ignore[arg-type]
    if "bigselect" in results:
        s["bigselect"] = transfer_summary(results["bigselect"])  # type: ignore[arg-type]
    if "masking" in results:
        s["masking"] = transfer_summary(results["masking"]["runs"])  # type: ignore[index]
    if "connect" in results:
        s["connect"] = connect_summary(results["connect"])  # type: ignore[arg-type]
    if "ldap" in results:
        ldap = results["ldap"]
        s["ldap_connect"] = connect_summary(ldap["connect"])  # type: ignore[index]
        storms = [r for r in ldap["storm"] if "error" not in r]  # type: ignore[index]
        s["ldap_storm"] = [
            {"target": t, "logins": sum(int(r["logins"]) for r in g),
             "failed": sum(int(r["failed"]) for r in g),
             "p50_ms": _med([float(r["p50_ms"]) for r in g]),
             "p99_ms": _med([float(r["p99_ms"]) for r in g]),
             "max_ms": max(float(r["max_ms"]) for r in g),
             "target_cpu_ms_per_login": _med([float(r["target_cpu_ms_per_login"]) for r in g
                                              if "target_cpu_ms_per_login" in r]),
             "vs_plain_p99": _med([float(a["p99_ms"]) / float(b["p99_ms"])
                                   for a in g for b in storms
                                   if b["target"] == "plain ldap binds"
                                   and b.get("repeat") == a.get("repeat")])}
            for (t,), g in _group(storms, "target").items()
        ]  # fmt: skip
    s["targets"] = check_targets(s, results)
    return s


def _find(rows: object, **match: object) -> Run:
    for row in rows or []:  # type: ignore[attr-defined]
        if all(row.get(k) == v for k, v in match.items()):
            return row
    return {}


def check_targets(s: dict[str, object], results: dict[str, object]) -> list[Run]:
    """The issue's targets, each with the measured figure and whether it is met."""
    checks: list[Run] = []

    def add(
        what: str, value: float | None, goal: float, higher_is_better: bool, note: str = ""
    ) -> None:
        met = None if value is None else (value >= goal if higher_is_better else value <= goal)
        op = "≥" if higher_is_better else "≤"
        checks.append({"target": what, "goal": f"{op} {goal}{note}", "measured": value, "met": met})

    sb = s.get("sysbench")
    for test in ("oltp_point_select", "oltp_read_only"):
        for ps in ("auto", "disable"):
            row = _find(sb, workload=f"{test}/t16/ps-{ps}", target="myguard")
            if row:
                add(f"{test} 16 thr ps-{ps}: myguard / HAProxy", row.get("vs_haproxy"), 1.0, True)
    for ps in ("auto", "disable"):
        row = _find(sb, workload=f"oltp_point_select/t1/ps-{ps}", target="myguard")
        if row:
            add(f"oltp_point_select 1 thr ps-{ps}: myguard / HAProxy", row.get("vs_haproxy"),
                0.7, True)  # fmt: skip
    for ps in ("auto", "disable"):
        # Throughput follows CPU per statement on two shared cores: same-run ratios, to
        # HAProxy (the goal) and to the bare uvloop relay (the floor of a Python proxy).
        runs = [r for r in results.get("sysbench", [])  # type: ignore[attr-defined]
                if r.get("workload") == f"oltp_point_select/t16/ps-{ps}"]  # fmt: skip
        value = ratio(runs, "cpu_us_per_query", "workload", "myguard", "haproxy")
        if value is not None:
            add(f"myguard CPU per point select / HAProxy's (16 thr ps-{ps})", value, 1.0, False)
        value = ratio(runs, "cpu_us_per_query", "workload", "myguard", "relay")
        if value is not None:
            add(f"myguard CPU per point select / relay's (16 thr ps-{ps})", value, 1.0, False,
                " (informational)")  # fmt: skip
    cli = [r for r in results.get("bigselect", []) if r.get("client") == "cli"]  # type: ignore[attr-defined]
    value = ratio(cli, "target_cpu_s", "client", "myguard", "haproxy")
    if value is not None:
        add("myguard CPU / HAProxy's to pass 1M rows (mariadb CLI)", value, 1.5, False)
    haproxy = _find(s.get("bigselect"), client="cli", target="haproxy")
    row = _find(s.get("connect"), target="myguard")
    if row:
        add("connections/s: myguard / direct", row.get("vs_direct"), 0.5, True)
        base = _find(s.get("connect"), target="direct").get("target_cpu_us_per_conn")
        if base and row.get("target_cpu_us_per_conn"):
            add("CPU per connection: myguard / MariaDB's (direct)",
                round(float(row["target_cpu_us_per_conn"]) / float(base), 2), 2.0, False)  # type: ignore[arg-type]  # fmt: skip
    row = _find(s.get("ldap_connect"), target="myguard ldap (warm cache)")
    if row:
        add("connections/s, LDAP warm cache: myguard / direct", row.get("vs_direct"), 0.45, True)
    row = _find(s.get("ldap_storm"), target="myguard")
    if row:
        add("LDAP storm (200 logins, 50 clients): failed logins", row.get("failed"), 0, False)
        add("LDAP storm p99: myguard / plain LDAP binds", row.get("vs_plain_p99"), 3.0, False)
    mem = _find(results.get("memory"), target="myguard")
    if mem:
        add("KiB per idle connection (myguard)", round(float(mem["bytes_per_conn"]) / 1024, 1),  # type: ignore[arg-type]
            16, False)  # fmt: skip
    row = _find(s.get("audit"), target="audit fsync=batch")
    if row:
        add("audit batch / audit off (point select 16 thr)", row.get("vs_audit fsync=off"),
            0.95, True)  # fmt: skip
    row = _find(s.get("masking"), target="masked (alice)")
    if row and haproxy.get("target_cpu_s"):
        masked = float(row["target_cpu_s"]) / float(haproxy["target_cpu_s"])  # type: ignore[arg-type]
        add("myguard CPU, 1M rows with 3 of 8 columns masked / HAProxy's 1M rows",
            round(masked, 2), 3.0, False)  # fmt: skip
    return checks


def _fmt(v: object) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def _table(rows: list[Run], cols: list[str]) -> list[str]:
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return out


def markdown(results: dict[str, object], summary: dict[str, object]) -> str:
    st: dict = results["settings"]  # type: ignore[assignment]
    m: dict = results["machine"]  # type: ignore[assignment]
    lines = [
        f"# myguard end-to-end benchmark, {results['started']}",
        "",
        f"{m['cpu_model']}, {m['cores']} cores ({m['hypervisor'] or 'bare metal'}), "
        f"{m['ram_gib']} GiB, kernel {m['kernel']}; {m['mariadb']}; {m['sysbench']}; "
        f"{m['haproxy']}; Python {m['python']}; myguard {m['myguard_commit'][:12]}"
        + (
            f" + uncommitted {', '.join(m['myguard_uncommitted_src'])}"
            if m["myguard_uncommitted_src"]
            else ""
        ),
        "",
        f"Settings: {'QUICK, ' if st['quick'] else ''}{st['repeats']} interleaved repeat(s) of "
        f"{st['duration_s']} s; HAProxy TCP mode nbthread {st['haproxy_nbthread']}; "
        + (
            f"relay: bare uvloop byte relay, {st['relay_workers']} workers; "
            if "relay_workers" in st
            else ""
        )
        + f"myguard {st['myguard']}. Client, proxies and MariaDB share the cores. Ratios are "
        "medians of per-repeat ratios (same repeat, back-to-back runs); compare those, not "
        "absolute numbers across runs.",
        "",
        "## Targets",
        "",
        *_table(summary["targets"], ["target", "goal", "measured", "met"]),  # type: ignore[arg-type]
    ]
    sections = [
        ("sysbench (median QPS, p95 ms, proxy CPU µs per query)", "sysbench",
         ["workload", "target", "qps", "p95_ms", "errors", "cpu_us_per_query", "foreign_cpu_pct",
          "vs_direct", "vs_haproxy", "vs_relay"]),
        ("Audit modes (oltp_point_select, 16 threads, server PS)", "audit",
         ["target", "qps", "p95_ms", "errors", "cpu_us_per_query", "vs_audit fsync=off",
          "vs_audit disabled"]),
        ("1 million rows (~190 B) streamed", "bigselect",
         ["client", "target", "wall_s", "mb_per_s", "rows_per_s", "target_cpu_s", "vs_direct"]),
        ("Masking: 1M rows × 8 columns, 3 masked vs none (mariadb CLI, same myguard)", "masking",
         ["client", "target", "wall_s", "mb_per_s", "rows_per_s", "target_cpu_s"]),
        ("Connections per second (connect, authenticate, quit; PyMySQL, parallel processes)",
         "connect", ["target", "per_s", "target_cpu_us_per_conn", "vs_direct"]),
        ("Connections per second, LDAP identity with a warm verifier cache",
         "ldap_connect", ["target", "per_s", "target_cpu_us_per_conn", "vs_direct"]),
        ("LDAP login storm: 200 logins (cold cache) by 50 concurrent clients, vs plain binds",
         "ldap_storm", ["target", "logins", "failed", "p50_ms", "p99_ms", "max_ms",
                        "target_cpu_ms_per_login", "vs_plain_p99"]),
    ]  # fmt: skip
    for title, key, cols in sections:
        if summary.get(key):
            rows = sorted(summary[key], key=lambda r: tuple(str(r.get(c)) for c in cols[:2]))  # type: ignore[attr-defined]
            lines += ["", f"## {title}", "", *_table(rows, cols)]
    if results.get("memory"):
        lines += ["", "## Idle connections (RSS of all the target's processes)", "",
                  *_table(results["memory"], ["target", "connections", "rss_before_mib",  # type: ignore[arg-type]
                                              "rss_after_mib", "bytes_per_conn"])]  # fmt: skip
    if results.get("masking"):
        lines += [
            "",
            "Sample rows (masked check): "
            + json.dumps(results["masking"]["sample_rows"], ensure_ascii=False),
        ]  # type: ignore[index]
    for kind, prof in (results.get("profile") or {}).items():  # type: ignore[attr-defined]
        lines += ["", f"## Profile: one myguard worker under {kind} load (py-spy)", ""]
        if "error" in prof:
            lines.append(f"py-spy failed: {prof['error']}")
            continue
        load = prof["load"]
        rate = load.get("qps") or load.get("per_s")
        lines.append(
            f"{prof['samples']} samples of the busy worker (idle excluded); load during the "
            f"profile: {_fmt(rate)}/s (py-spy's sampling slows the worker). C work such as "
            "socket sends is charged to the Python frame that called it."
        )
        for order in ("self", "inclusive"):
            lines += ["", f"Top functions by {order} samples:", "", "| % | function |", "|---|---|"]
            lines += [f"| {pct} | `{frame}` |" for frame, pct in prof[order]]
    for name, trace in (results.get("failures") or {}).items():  # type: ignore[attr-defined]
        lines += ["", f"## Measure `{name}` failed", "", "```", str(trace).strip()[-1500:], "```"]
    failed = [
        r
        for k in ("sysbench", "audit", "bigselect", "connect")
        for r in results.get(k, [])
        if "error" in r
    ]  # type: ignore[attr-defined]
    if failed:
        lines += ["", "## Failed runs", ""]
        lines += [f"- {r.get('target')} {r.get('workload', r.get('client', ''))}: "
                  f"{str(r['error']).strip()[:300]}" for r in failed]  # fmt: skip
    return "\n".join(lines) + "\n"


def write(results: dict[str, object], out: Path, started: dt.datetime, quick: bool) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(results)
    results["summary"] = summary
    stem = ("quick-" if quick else "results-") + started.strftime("%Y-%m-%d-%H%M")
    (out / f"{stem}.json").write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    md = markdown(results, summary)
    (out / f"{stem}.md").write_text(md)
    if not quick:  # latest.md is the last full run; quick runs are for debugging only
        (out / "latest.md").write_text(md)
    return out / f"{stem}.md"


def render(json_path: Path) -> Path:
    """Rewrite the Markdown of an earlier run from its JSON (after a report change)."""
    results = json.loads(json_path.read_text())
    md = markdown(results, results["summary"])
    json_path.with_suffix(".md").write_text(md)
    if json_path.name.startswith("results-"):
        latest = sorted(json_path.parent.glob("results-*.json"))[-1]
        if latest == json_path:
            (json_path.parent / "latest.md").write_text(md)
    return json_path.with_suffix(".md")
