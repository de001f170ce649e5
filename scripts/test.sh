#!/usr/bin/env bash
# The test suite: installs what it needs (scripts/setup.sh, into .venv), then lint + pytest in that environment.
# Tests run in 4 processes, a test file to each (most of a test's time is spent waiting on sshd, Ansible and
# the simulator, so 4 pay on 2 cores); LABCTL_TEST_WORKERS=0 runs them in this process.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
python -m ruff check labctl tests benchmarks playbooks/library
workers=${LABCTL_TEST_WORKERS:-4}
if [ "$workers" = 0 ]; then
  exec python -m pytest -q "$@"
fi
exec python -m pytest -q -n "$workers" --dist loadfile "$@"
