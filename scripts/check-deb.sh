#!/usr/bin/env bash
# Builds the .deb (scripts/package) and proves it on this machine, as root: lintian
# says nothing; it installs; `tidings --version` and `man tidings` work; the installed
# units verify silently; the agent's user unit is enabled for every user; an upgrade
# keeps a user's agent data; a purge leaves nothing of the package behind.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "check-deb.sh installs the package: run it as root" >&2
  exit 1
fi
missing=()
for pkg in lintian man-db systemd; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  apt-get clean  # the downloaded .debs are not needed again; CI disk is short
fi

rm -rf dist
./scripts/package --deb
deb="$(ls dist/tidings_*_amd64.deb)"

echo "== lintian (must say nothing)"
said="$(lintian --tag-display-limit 0 "$deb" 2>&1 | grep -v 'running with root privileges' || true)"
if [ -n "$said" ]; then echo "$said" >&2; exit 1; fi

home="$(mktemp -d)"
cleanup() {
  dpkg --purge tidings >/dev/null 2>&1 || true
  rm -rf "$home"
}
trap cleanup EXIT

echo "== install"
dpkg -i "$deb"
/usr/bin/tidings --version
man -P cat tidings | grep -q "tidings" || { echo "man tidings shows nothing" >&2; exit 1; }
test -L /etc/systemd/user/default.target.wants/tidings-agent.service \
  || { echo "the agent's user unit is not enabled for all users" >&2; exit 1; }
test -f /etc/tidings/config.toml

echo "== the installed units verify silently"
said="$(systemd-analyze verify --man=no /usr/lib/systemd/system/tidings-service.service 2>&1)"
said+="$(XDG_RUNTIME_DIR="$home" systemd-analyze --user verify --man=no /usr/lib/systemd/user/tidings-agent.service 2>&1)"
if [ -n "$said" ]; then echo "$said" >&2; exit 1; fi

echo "== an upgrade keeps a user's agent data"
mkdir -p "$home/run" && chmod 700 "$home/run"
user_env=(env -i HOME="$home" XDG_RUNTIME_DIR="$home/run" USER=tester PATH=/usr/bin:/bin)
as_user() { "${user_env[@]}" "$@"; }
# The agent is started by env directly (env execs it, so $! is the agent itself: a
# backgrounded shell function would give a subshell's pid, and killing that would leave
# the old agent running to answer the checks after the upgrade).
agent_up() {
  "${user_env[@]}" tidings agent --no-toasts >"$home/agent.log" 2>&1 &
  agent=$!
  for _ in $(seq 200); do as_user tidings status >/dev/null 2>&1 && return; sleep 0.1; done
  echo "the installed agent did not start" >&2; cat "$home/agent.log" >&2; exit 1
}
agent_down() {
  kill "$agent" 2>/dev/null || true; wait "$agent" || true
  if as_user tidings status >/dev/null 2>&1; then
    echo "an agent still answers after the one started here was stopped" >&2; exit 1
  fi
}
agent_up
id="$(as_user tidings send --title 'kept over an upgrade' --json | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')"
agent_down
cargo deb --no-build --locked --strip --deb-version 0.1.0-2 --output dist/ >/dev/null
dpkg -i dist/tidings_0.1.0-2_amd64.deb
dpkg-query -W -f='${Version}\n' tidings | grep -qx '0.1.0-2'
agent_up
as_user tidings history --json | grep -q "$id" || { echo "the agent's data did not survive the upgrade" >&2; exit 1; }
agent_down

echo "== purge leaves nothing behind"
files="$(dpkg-query -L tidings | while read -r path; do [ -f "$path" ] || [ -L "$path" ] && echo "$path"; done)"
dpkg --purge tidings
left=""
for path in $files /etc/tidings /etc/systemd/user/default.target.wants/tidings-agent.service; do
  if [ -e "$path" ] || [ -L "$path" ]; then left+=" $path"; fi
done
if [ -n "$left" ]; then echo "left behind after purge:$left" >&2; exit 1; fi
echo "the .deb checks passed: $(basename "$deb") and an upgrade to 0.1.0-2"
