#!/usr/bin/env bash
# The Windows checks, run by .ci/run after the .deb's, as root on Debian (under Wine
# 8.0 with the test-only bcryptprimitives.dll shim, which the .msi never holds):
#  1. the library's unit tests, cross-built and run under Wine;
#  2. an IPC round trip: the agent in local mode, `tidings send` and
#     `tidings history --json` over the agent's named pipe;
#  3. the .msi: built, installed (`msiexec /i ... /qn`), its files, PATH, Start menu
#     shortcut and Run entry checked, the Run entry's command started; upgraded by a
#     newer build (which the older one then refuses to replace); uninstalled, leaving
#     the user's data.
# When the Windows toolchain cannot be installed this fails; it never passes silently.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/windows-env.sh

fail() { echo "check-windows: $*" >&2; exit 1; }
windows_toolchain || fail "no Windows toolchain: the Windows checks did not run"
command -v jq >/dev/null || fail "jq is missing (./scripts/test.sh installs it)"

wine_prefix "$PWD/target/wine-prefix"
trap 'wineserver -k >/dev/null 2>&1 || true' EXIT
home="$WINEPREFIX/drive_c/users/$(id -un)"
install_dir="$home/AppData/Local/Programs/tidings"
shortcut="$home/AppData/Roaming/Microsoft/Windows/Start Menu/Programs/tidings.lnk"
agent_data="$home/AppData/Roaming/tidings/data/agent"
run_key='HKCU\Software\Microsoft\Windows\CurrentVersion\Run'

# (Pipelines end in `grep > /dev/null`, not `grep -q`: with pipefail, -q's early exit
# would fail the writer with SIGPIPE.)

# Runs "$@" until it succeeds, for at most $1 seconds.
within() {
  local seconds="$1" deadline
  shift
  deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.5
  done
}

# Stops the agent started as process $1: Ctrl-C (Wine turns SIGINT into a console
# Ctrl-C event), then waits for it to go.
stop_agent() {
  kill -INT "$1" 2>/dev/null || true
  gone_within_20s "$1" "the agent did not stop within 20 s of Ctrl-C"
}

# Ends the windowless agent started as process $1 as Task Manager's "End task" or a
# logoff does: it has no console to get a Ctrl-C and no window to close.
end_windowless() {
  wine taskkill /f /im tidingsw.exe >/dev/null 2>&1 || true
  gone_within_20s "$1" "taskkill did not end tidingsw.exe within 20 s"
}

# Waits for process $1 to end; kills it and fails with $2 after 20 s.
gone_within_20s() {
  local deadline=$((SECONDS + 20))
  while kill -0 "$1" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || { kill -KILL "$1"; fail "$2"; }
    sleep 0.2
  done
}

reg_value() { wine reg query "$1" /v "$2" 2>/dev/null | tr -d '\r' | awk -v name="$2" '$1 == name { $1 = ""; $2 = ""; sub(/^  */, ""); print }'; }

echo "== unit tests under Wine (release profile, sharing the programs' build)"
windows_cargo test --release --features windowless --lib

echo "== the Windows programs"
windows_build
tidings="$WINDOWS_BIN/tidings.exe"
wine "$tidings" --version
# The Run entry and the shortcut start tidingsw.exe: it must open no console window.
subsystem() { x86_64-w64-mingw32-objdump -p "$1" | awk '$1 == "Subsystem" { print $2 }'; }
[ "$(subsystem "$WINDOWS_BIN/tidingsw.exe")" = 00000002 ] \
  || fail "tidingsw.exe is not a GUI-subsystem program (it would open a console window)"
[ "$(subsystem "$tidings")" = 00000003 ] \
  || fail "tidings.exe is not a console program"

echo "== IPC round trip over the named pipe (agent in local mode)"
wine "$tidings" agent --no-toasts > target/wine-agent.log 2>&1 &
agent=$!
within 90 wine "$tidings" status || { cat target/wine-agent.log >&2; fail "the agent did not answer over its pipe within 90 s"; }
id="$(wine "$tidings" send --title "over the pipe" --body "from Wine" --json | tr -d '\r' | jq -r .id)"
[ -n "$id" ] && [ "$id" != null ] || fail "tidings send gave no id"
wine "$tidings" history --json | tr -d '\r' | jq -e --arg id "$id" \
  '[.items[] | select(.id == $id and .payload.visualContent.title == "over the pipe")] | length == 1' >/dev/null \
  || fail "tidings history --json does not hold the sent notification $id"
stop_agent "$agent"
test -d "$agent_data" || fail "the agent left no data in $agent_data"

echo "== the .msi: build"
version="$(msi_version)"
newer="${version%.*}.$((${version##*.} + 1))"
./scripts/package --msi --msi-version "$version"
./scripts/package --msi --msi-version "$newer"
msi="dist/tidings-$version-x64.msi"
files="$(msiinfo export "$msi" File | tail -n +4 | cut -f3 | sort | tr '\n' ' ')"
[ "$files" = "tidings.exe tidingsw.exe " ] || fail "the .msi should hold tidings.exe and tidingsw.exe only, holds: $files"
msiinfo export "$msi" MsiShortcutProperty | grep $'AgentShortcut\tSystem.AppUserModel.ID\tTidings.Agent' >/dev/null \
  || fail "the Start menu shortcut does not carry the app id Tidings.Agent"

installed_version() {
  wine reg query 'HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall' /s 2>/dev/null | tr -d '\r' \
    | awk '/DisplayName/ { name = $3 } /DisplayVersion/ && name == "tidings" { print $3; name = "" }'
}

check_installed() {
  local want="$1"
  cmp "$install_dir/tidings.exe" "$WINDOWS_BIN/tidings.exe" || fail "tidings.exe is not the built one"
  cmp "$install_dir/tidingsw.exe" "$WINDOWS_BIN/tidingsw.exe" || fail "tidingsw.exe is not the built one"
  [ ! -e "$install_dir/bcryptprimitives.dll" ] || fail "the test-only shim was installed"
  local path
  path="$(reg_value 'HKCU\Environment' PATH)"
  [ "$(grep -o 'Programs\\tidings\\' <<< "$path" | wc -l)" = 1 ] \
    || fail "the user's PATH should name the install directory once: $path"
  test -f "$shortcut" || fail "no Start menu shortcut"
  strings -el "$shortcut" | grep 'tidingsw.exe' >/dev/null || fail "the shortcut does not start tidingsw.exe"
  strings -el "$shortcut" | grep -x 'agent' >/dev/null || fail "the shortcut does not start the agent"
  [ "$(reg_value "$run_key" tidings)" = "\"C:\\users\\$(id -un)\\AppData\\Local\\Programs\\tidings\\tidingsw.exe\" agent" ] \
    || fail "the Run entry is not the windowless agent: $(reg_value "$run_key" tidings)"
  [ "$(installed_version)" = "$want" ] || fail "installed versions: '$(installed_version)', want only $want"
}

echo "== the .msi: install $version"
wine msiexec /i "Z:$PWD/$msi" /qn /l*v "Z:$PWD/target/msi-install.log" || fail "msiexec /i failed (target/msi-install.log)"
check_installed "$version"
wine cmd /c tidings --version | grep "^tidings " >/dev/null || fail "tidings is not found on the user's PATH"

# Starts the agent as the Run entry does at logon, checks it answers with the
# notification sent earlier (the user's data kept), then ends it.
logon_agent() {
  local command exe
  command="$(reg_value "$run_key" tidings)"
  exe="$(sed -n 's/^"\(.*\)" agent$/\1/p' <<< "$command")"
  [ -n "$exe" ] || fail "the Run entry is not '\"...\" agent': $command"
  wine "$exe" agent &
  local agent=$!
  within 90 wine "$tidings" status || fail "the agent started by the Run entry does not answer"
  wine "$tidings" history --json | tr -d '\r' | jq -e --arg id "$id" '[.items[] | select(.id == $id)] | length == 1' >/dev/null \
    || fail "the agent started at logon does not have the earlier notification"
  end_windowless "$agent"
}

echo "== the Run entry's command starts the agent without a console, logging to a file"
logon_agent
ls "$home/AppData/Local/tidings/data/logs/"tidings.*.log >/dev/null || fail "tidingsw wrote no log file"

echo "== the .msi: upgrade to $newer"
wine msiexec /i "Z:$PWD/dist/tidings-$newer-x64.msi" /qn /l*v "Z:$PWD/target/msi-upgrade.log" || fail "the upgrade failed (target/msi-upgrade.log)"
check_installed "$newer"
logon_agent
if wine msiexec /i "Z:$PWD/$msi" /qn >/dev/null 2>&1; then fail "the older .msi installed over the newer one"; fi
check_installed "$newer"

echo "== the .msi: uninstall"
wine msiexec /x "Z:$PWD/dist/tidings-$newer-x64.msi" /qn /l*v "Z:$PWD/target/msi-uninstall.log" || fail "msiexec /x failed (target/msi-uninstall.log)"
[ ! -e "$install_dir" ] || fail "the install directory is left: $(ls "$install_dir")"
[ ! -e "$shortcut" ] || fail "the Start menu shortcut is left"
[ -z "$(reg_value "$run_key" tidings)" ] || fail "the Run entry is left"
! reg_value 'HKCU\Environment' PATH | grep 'Programs\\tidings' >/dev/null || fail "the install directory is left on PATH"
! wine reg query 'HKCU\Software\tidings' >/dev/null 2>&1 || fail "HKCU\\Software\\tidings is left"
[ -z "$(installed_version)" ] || fail "tidings is still registered as installed"
test -d "$agent_data" || fail "the uninstall removed the user's agent data"
echo "== Windows checks passed"
