"""End-to-end benchmarks: sysbench and bulk transfers through direct MariaDB, HAProxy, myguard.

Run with ``python -m benchmarks.e2e`` from the repository root; see benchmarks/README.md.
"""
