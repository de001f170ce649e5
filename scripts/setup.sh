#!/usr/bin/env bash
# Install what labctl, its simulated lab and its tests need, into the project's own virtual environment (.venv).
#
# The system interpreter is never installed into (PEP 668): a Python >= 3.11 found on PATH (or $LABCTL_PYTHON)
# creates .venv once; later calls reuse it and reinstall only when pyproject.toml or setup.py changed.
# Debian packages only when root (openssh-server for the test hosts, bpftrace, chromium for the report test).
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {
  local py
  for py in ${LABCTL_PYTHON:-} python3 python3.13 python3.12 python3.11; do
    if command -v "$py" >/dev/null && "$py" -c 'import sys; raise SystemExit(sys.version_info < (3, 11))' 2>/dev/null
    then command -v "$py"; return 0; fi
  done
  echo "setup: labctl needs Python 3.11 or newer on PATH (or LABCTL_PYTHON=/path/to/python3.11)" >&2
  return 1
}
PY=$(find_python)

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  need=()
  command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || need+=(openssh-server)
  command -v bpftrace >/dev/null || need+=(bpftrace)
  command -v chromium >/dev/null || need+=(chromium)
  command -v git >/dev/null || need+=(git)
  command -v unshare >/dev/null || need+=(util-linux)
  # simulated NFS client of the test hosts: a FUSE passthrough (libfuse3 through mfusepy)
  command -v fusermount3 >/dev/null || need+=(fuse3)
  # a Debian/Ubuntu system Python has venv and ensurepip only with python3-venv
  if [ ! -x .venv/bin/python ] && ! "$PY" -c 'import ensurepip, venv' 2>/dev/null; then
    need+=("python$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')-venv")
  fi
  if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
  # bpftrace needs tracefs for syscall tracepoints
  if [ -d /sys/kernel/tracing ] && [ ! -e /sys/kernel/tracing/events ]; then
    mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
  fi
fi

# a .venv whose interpreter is gone (its base Python removed or upgraded) is made anew
if [ -e .venv ] && ! .venv/bin/python -c 'import sys; raise SystemExit(sys.version_info < (3, 11))' 2>/dev/null; then
  rm -rf .venv
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv

# ".[test]" includes the simulated lab's FUSE counter (mfusepy, extra "sim")
stamp=$(sha256sum < pyproject.toml | cut -c1-16)
if [ "$(cat .venv/.labctl-installed 2>/dev/null)" != "$stamp" ] || ! .venv/bin/python -c 'import labctl' 2>/dev/null; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]"
  echo "$stamp" > .venv/.labctl-installed
fi
