#!/usr/bin/env bash
# The main job on the simulated lab: install what is needed (scripts/setup.sh, into .venv), then `labctl demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/labctl demo "$@"
