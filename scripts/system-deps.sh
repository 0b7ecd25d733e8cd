#!/usr/bin/env bash
# Debian packages the test suite drives as real parts. Installs only what is missing.
set -euo pipefail

need=()
command -v clickhouse-server >/dev/null || need+=(clickhouse-server)
command -v pg_ctlcluster >/dev/null || need+=(postgresql)
command -v redis-server >/dev/null || need+=(redis-server)
# User data of the stack's nodes is validated as Debian's own tools would (tests/stacks).
command -v cloud-init >/dev/null || need+=(cloud-init)
command -v shellcheck >/dev/null || need+=(shellcheck)
command -v openssl >/dev/null || need+=(openssl)
# `bench ingest --instructions` counts instructions with callgrind where the kernel does not let
# perf read the CPU's counter (containers, most VMs).
command -v valgrind >/dev/null || need+=(valgrind)
# The deploy tests' hosts (tests/support/hosts.py): a Debian root booted in systemd containers,
# each in its own network namespace; and haproxy, which the deploy tests drive.
PATH="$PATH:/usr/sbin:/sbin"
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v systemd-nspawn >/dev/null || need+=(systemd-container)
command -v ip >/dev/null || need+=(iproute2)
command -v haproxy >/dev/null || need+=(haproxy)

if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "missing system packages: ${need[*]} (run as root or: sudo apt-get install ${need[*]})" >&2
        exit 1
    fi
    echo "==> apt-get install ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
