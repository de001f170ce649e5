#!/usr/bin/env bash
# Install what labctl, its simulated lab and its tests need on a fresh Debian machine.
# Debian packages only when root (openssh-server for the test hosts, bpftrace, chromium for the report test).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  need=()
  command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || need+=(openssh-server)
  command -v bpftrace >/dev/null || need+=(bpftrace)
  command -v chromium >/dev/null || need+=(chromium)
  command -v git >/dev/null || need+=(git)
  command -v unshare >/dev/null || need+=(util-linux)
  # simulated NFS client of the test hosts: a FUSE passthrough (libfuse3 through mfusepy)
  command -v fusermount3 >/dev/null || need+=(fuse3)
  # the report's compiled scanner (labctl/analysis/_scan.c; without it the pure-Python parsers run)
  command -v cc >/dev/null || need+=(gcc libc6-dev)
  python3 -c 'import os, sysconfig; raise SystemExit(not os.path.exists(sysconfig.get_paths()["include"] + "/Python.h"))' \
    || need+=(python3-dev)
  if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
  # bpftrace needs tracefs for syscall tracepoints
  if [ -d /sys/kernel/tracing ] && [ ! -e /sys/kernel/tracing/events ]; then
    mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
  fi
fi
# ".[test]" includes the simulated lab's FUSE counter (mfusepy, extra "sim")
python3 -m pip install -q --disable-pip-version-check -e ".[test]"
