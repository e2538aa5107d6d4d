#!/usr/bin/env bash
# Brings up the demo: installs what is missing, then a private MariaDB with sample data
# and myguard in front of it; prints how to connect.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/bootstrap.sh"
MYGUARD_SVC_PASSWORD=unused exec "$here/.venv/bin/python" "$here/scripts/demo.py"
