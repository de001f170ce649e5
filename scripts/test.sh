#!/usr/bin/env bash
# The test suite: installs what it needs (scripts/setup.sh, into .venv), then lint + pytest in that environment.
#
# Tests run in 4 processes, a test file to each (most of a test's time is spent waiting on sshd, Ansible and
# the simulator, so 4 pay on 2 cores); LABCTL_TEST_WORKERS=0 runs them in this process. With no arguments,
# the tests that install packages into a fresh environment (marker `installs`: pipx install of labctl;
# `llmstudio_e2e`: the real LLM Studio) run after the rest, each phase timed; arguments go to one pytest run.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
python -m ruff check labctl tests benchmarks playbooks/library
workers=${LABCTL_TEST_WORKERS:-4}
parallel=(-n "$workers" --dist loadfile)
[ "$workers" = 0 ] && parallel=()
if [ $# -gt 0 ]; then
  exec python -m pytest -q "${parallel[@]}" "$@"
fi
INSTALLS="installs or llmstudio_e2e"
began=$SECONDS
python -m pytest -q "${parallel[@]}" -m "not ($INSTALLS)"
echo "test.sh: the suite took $((SECONDS - began)) s"
began=$SECONDS
rc=0
python -m pytest -q -m "$INSTALLS" || rc=$?
echo "test.sh: the install tests took $((SECONDS - began)) s"
[ "$rc" = 5 ] && rc=0  # none collected
exit "$rc"
