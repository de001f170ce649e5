#!/usr/bin/env bash
# The main job on the simulated lab: install what is needed, then `labctl demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec python3 -m labctl demo "$@"
