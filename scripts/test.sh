#!/usr/bin/env bash
# Installs whatever is missing, then runs lint and the whole test suite.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
./scripts/bootstrap.sh
.venv/bin/ruff check src tests benchmarks scripts
.venv/bin/ruff format --check src tests benchmarks scripts
exec .venv/bin/pytest -q -p no:cacheprovider "$@"
