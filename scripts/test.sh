#!/usr/bin/env bash
# The test suite: installs what it needs, then lint + pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
python3 -m ruff check labctl tests benchmarks playbooks/library
python3 -m pytest -q "$@"
