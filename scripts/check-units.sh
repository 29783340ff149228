#!/usr/bin/env bash
# Checks the systemd units in systemd/ offline, as CI: `systemd-analyze verify` must
# print nothing for either (it exits 0 on bad keys, so any output fails), and the
# system unit's `security --offline` exposure must be 3.0 or lower. The units run
# /usr/bin/tidings; here they run the binary given as $1 (default target/debug/tidings).
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(realpath "${1:-target/debug/tidings}")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for unit in systemd/*.service; do
  sed "s#/usr/bin/tidings#$bin#g" "$unit" > "$work/$(basename "$unit")"
done

verify() {
  local said
  said="$("$@" 2>&1)" || { echo "$said" >&2; return 1; }
  if [ -n "$said" ]; then
    echo "systemd-analyze said something (it must say nothing):" >&2
    echo "$said" >&2
    return 1
  fi
}
verify systemd-analyze verify --man=no "$work/tidings-service.service"
XDG_RUNTIME_DIR="$work" verify systemd-analyze --user verify --man=no "$work/tidings-agent.service"
echo "units verify cleanly"

score() { # the "Overall exposure level" figure of `systemd-analyze [--user] security`
  "$@" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p'
}
system="$(score systemd-analyze security --offline=yes "$work/tidings-service.service")"
user="$(XDG_RUNTIME_DIR="$work" score systemd-analyze --user security --offline=yes "$work/tidings-agent.service")"
echo "exposure: tidings-service.service $system (at most 3.0), tidings-agent.service $user (user unit)"
awk -v s="$system" 'BEGIN { exit !(s != "" && s <= 3.0) }' || {
  echo "the system unit's exposure $system is above 3.0" >&2
  exit 1
}
