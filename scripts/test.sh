#!/usr/bin/env bash
# The test suite: lint, types, then every test on real services (clamd, PostgreSQL, Redis, moto_server).
# With CI=true a missing service fails its tests instead of skipping them.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check bidproc tests bench
.venv/bin/mypy
exec .venv/bin/pytest -q -p no:cacheprovider "$@"
