#!/usr/bin/env bash
# Runs the README's commands as written, so that they cannot go stale: every shell block
# marked `<!-- readme-check: NAME -->` is taken from README.md and run, in order, in a
# private HOME with `tidings` (the debug build) on PATH.
#
# Two stand-ins, and only these: `cargo run --release -- ARGS` runs the debug build's
# `tidings ARGS` (the first release build takes minutes and proves nothing more here),
# and `cargo install --locked --path .` does nothing (the build is on PATH already). The blocks
# that start a long-running program (the agent, the service) run in the background, and
# the script waits until it answers, as a person would before typing the next block.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

for tool in curl jq; do
  command -v "$tool" >/dev/null || { echo "readme-check: $tool is missing (apt-get install -y $tool)" >&2; exit 1; }
done
# The binary to run: $TIDINGS_BIN (the test command passes the one its tests just built;
# building it again here, without the test features, would recompile half the tree),
# else a fresh debug build.
if [ -z "${TIDINGS_BIN:-}" ]; then
  cargo build --locked --quiet --bin tidings
  TIDINGS_BIN=$root/target/debug/tidings
fi

sandbox=$(mktemp -d)
bin=$sandbox/bin
mkdir -p "$bin" "$sandbox/home" "$sandbox/run"
chmod 700 "$sandbox/run"
ln -s "$(realpath "$TIDINGS_BIN")" "$bin/tidings"
cat > "$bin/cargo" <<'SHIM'
#!/usr/bin/env bash
# readme-check's stand-in for cargo (see scripts/readme-check.sh).
case "$*" in
  "run --release -- "*) shift 3; exec tidings "$@" ;;
  "install --locked --path .") exit 0 ;;
  *) echo "readme-check: unexpected cargo $*" >&2; exit 1 ;;
esac
SHIM
chmod +x "$bin/cargo"

export HOME=$sandbox/home XDG_RUNTIME_DIR=$sandbox/run USER=readme PATH=$bin:$PATH
unset XDG_DATA_HOME XDG_CONFIG_HOME
export TIDINGS_LOG=warn
demo=/tmp/tidings-demo
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$sandbox" "$demo" "$demo-app.json"
}
trap cleanup EXIT
rm -rf "$demo" "$demo-app.json"

# The block after `<!-- readme-check: NAME -->`.
block() {
  awk -v name="$1" '
    $0 == "<!-- readme-check: " name " -->" { marked = 1; next }
    marked && /^```/ { if (inside) exit; inside = 1; next }
    inside { print }
  ' README.md
}

# Polls "$@" until it succeeds, for at most 60 s.
wait_for() {
  for _ in $(seq 600); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "readme-check: gave up waiting for: $*" >&2
  exit 1
}

run() {
  local name=$1 text
  text=$(block "$name")
  [ -n "$text" ] || { echo "readme-check: README.md has no block $name" >&2; exit 1; }
  echo "== README block $name" >&2
  eval "$text"
}

run_in_background() {
  local name=$1 text
  text=$(block "$name")
  [ -n "$text" ] || { echo "readme-check: README.md has no block $name" >&2; exit 1; }
  echo "== README block $name (in the background)"
  bash -c "$text" &
  pids+=($!)
}

agent_connected() {
  [ "$(tidings status --json | jq -r .state)" = connected ]
}

run_in_background agent
run install
wait_for agent_connected
run everyday
run backend
[ "$(tidings history --app contoso.com --json | jq '.items | length')" -ge 1 ]
run encrypted
tidings history --app contoso.com --json \
  | jq -e '[.items[] | select(.payload.encryptedContent == [] and .payload.visualContent.title == "Your code is 271828")] | length == 1' >/dev/null
run completions
grep -q "tidings" "$HOME/.local/share/bash-completion/completions/tidings"
grep -q "^.TH tidings" "$HOME/.local/share/man/man1/tidings.1"
grep -q "^.TH tidings-send" "$HOME/.local/share/man/man1/tidings-send.1"

run_in_background service
wait_for curl -sf http://127.0.0.1:7320/healthz
wait_for test -S "$demo/admin.sock"
run service-admin
run service-device
post=$(run service-post)
echo "$post" | head -1
echo "$post" | head -1 | grep -q " 201 "
feed=$(run service-feed)
echo "$feed" | grep -q '"title": "Your order shipped"'
echo "readme-check: every marked README block ran"
