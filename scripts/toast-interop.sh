#!/bin/bash
# Runs the real agent against another freedesktop notification server, headless, and
# prints what crossed the bus: a hand check of interoperability beyond the dunst the
# test suite uses (docs/toasts.md, "Other notification servers").
#
#   scripts/toast-interop.sh SERVER [X Y]
#
# SERVER is a notification server's executable, e.g.
#   /usr/lib/notification-daemon/notification-daemon          (apt-get install notification-daemon)
#   /usr/lib/x86_64-linux-gnu/xfce4/notifyd/xfce4-notifyd     (apt-get install xfce4-notifyd)
# It needs xvfb, dbus-daemon, dbus-bin (dbus-monitor), imagemagick (import) and, to
# click, xdotool. Everything runs in a temporary HOME, on a private bus and display.
#
# What it does: sends two notifications through `tidings send` (the first with markup
# in its body), marks the first read (its toast must close), then, with X Y, clicks
# the screen there (a toast's close button, "Mark as read" or its body) and prints
# what became of the second notification. Screenshots before and after go to the
# temporary directory it prints.
set -euo pipefail

server=${1:?usage: $0 SERVER [X Y]}
click=${2:+$2 ${3:?give both X and Y}}
tidings=${TIDINGS:-$(dirname "$0")/../target/debug/tidings}
[ -x "$tidings" ] || { echo "build first: cargo build (or set TIDINGS)" >&2; exit 2; }

work=$(mktemp -d /tmp/tidings-interop.XXXX)
export HOME=$work/home XDG_RUNTIME_DIR=$work/run
export XDG_CONFIG_HOME=$HOME/.config XDG_DATA_HOME=$HOME/.local/share
mkdir -p "$HOME" "$XDG_RUNTIME_DIR"
chmod 700 "$XDG_RUNTIME_DIR"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; }
trap cleanup EXIT

wait_for_file() { for _ in $(seq 100); do [ -s "$1" ] && return; sleep 0.1; done; echo "no $1" >&2; exit 1; }

Xvfb -displayfd 3 -screen 0 1280x800x24 -nolisten tcp 3>"$work/display" 2>/dev/null &
pids+=($!)
wait_for_file "$work/display"
DISPLAY=:$(cat "$work/display")
export DISPLAY

cat >"$work/bus.conf" <<'CONF'
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:tmpdir=/tmp</listen><auth>EXTERNAL</auth>
<policy context="default"><allow send_destination="*" eavesdrop="true"/>
<allow eavesdrop="true"/><allow own="*"/></policy></busconfig>
CONF
dbus-daemon --config-file="$work/bus.conf" --print-address=1 --nofork >"$work/bus" 2>/dev/null &
pids+=($!)
wait_for_file "$work/bus"
DBUS_SESSION_BUS_ADDRESS=$(head -1 "$work/bus")
export DBUS_SESSION_BUS_ADDRESS

dbus-monitor --session "interface='org.freedesktop.Notifications'" >"$work/monitor.log" 2>&1 &
pids+=($!)
"$server" >"$work/server.log" 2>&1 &
pids+=($!)
"$tidings" agent >"$work/agent.log" 2>&1 &
agent=$!
pids+=("$agent")
for _ in $(seq 100); do "$tidings" status >/dev/null 2>&1 && break; sleep 0.1; done
"$tidings" status | grep toasts

first=$("$tidings" send --title "Interop <one>" --body "body & <b>markup</b>" | awk '{print $2}')
second=$("$tidings" send --title "second" | awk '{print $2}')
sleep 1
import -display "$DISPLAY" -window root "$work/before.png"
echo "read $first"
"$tidings" read "$first" >/dev/null
sleep 2
if [ -n "$click" ]; then
    # shellcheck disable=SC2086 # X and Y are two words on purpose
    xdotool mousemove $click click 1
    sleep 1
    echo "after the click at $click, the second notification is:"
    "$tidings" show "$second" --json |
        python3 -c 'import json,sys; d=json.load(sys.stdin); print(" ", d["readState"], d["userActionState"])'
fi
import -display "$DISPLAY" -window root "$work/after.png"
kill "$agent"
wait "$agent" || true

echo "on the bus:"
grep -E 'member=(Notify|CloseNotification|NotificationClosed|ActionInvoked)$|^   (uint32|string)' "$work/monitor.log" |
    grep -v -E 'string "(tidings|default|Open|read|Mark as read|desktop-entry|sender-pid|urgency)"' |
    sed -E 's/^.*member=/  /' | head -40
echo "agent warnings:"
grep -v ' INFO ' "$work/agent.log" || echo "  none"
echo "screenshots and logs: $work"
