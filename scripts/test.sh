#!/usr/bin/env bash
# The test command (README "Set-up commands"): installs what the tests need on a fresh Debian
# machine, then runs the format check, clippy and every test.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "tidings' tests: about 20 minutes on 2 cores from a fresh clone (mostly building), a few once built"

# System packages the build and tests need (installed only when missing, only as root):
# the toast tests run a private D-Bus session with dunst under Xvfb; the README's
# commands (scripts/readme-check.sh) use curl and jq; the full-disk test mounts a tmpfs;
# the unit check (scripts/check-units.sh) runs systemd-analyze; the web app's tests drive a
# headless Chromium through chromedriver; the PostgreSQL store's tests start a private
# PostgreSQL cluster (initdb, pg_ctl) in a temp dir; the encryption tests check against
# Python's http_ece, in a virtual environment (python3-venv); the panel icon's test runs a
# real panel that hosts status icons (xfce4-panel, its status tray plugin).
packages=(gcc libc6-dev pkg-config ca-certificates dbus-daemon dbus-bin dunst xvfb curl jq mount systemd chromium chromium-driver postgresql python3-venv xfce4-panel)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    apt-get clean  # the downloaded .debs are not needed again; CI disk is short
  else
    echo "missing packages: ${missing[*]} (run as root, or install them with apt-get)" >&2
    exit 1
  fi
fi

if ! command -v cargo >/dev/null; then
  echo "cargo is missing: install Rust with rustup (https://rustup.rs), then run this again" >&2
  exit 1
fi
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy

# Independent implementations the tests compare with (target/python).
./scripts/python-env.sh

# A one-off full build gains nothing from cargo's incremental cache (1.4 GB when it was
# kept); CI machines have limited disk.
export CARGO_INCREMENTAL=0

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --all-features --locked -- -D warnings
echo "== no aws-lc-rs in the dependency tree (ring is the TLS provider)"
if cargo tree --locked --target all -i aws-lc-rs >/dev/null 2>&1; then
  echo "aws-lc-rs is in the dependency tree; use ring-only features" >&2
  exit 1
fi
echo "== vendor/sled is the published sled plus vendor/sled.patch (scripts/check-sled.sh)"
./scripts/check-sled.sh
# test-hooks: the test-only switches the integration tests set for the real binary.
echo "== cargo test"
cargo test --locked --all-targets --features test-hooks
cargo test --locked --doc --features test-hooks
# Every test again with the in-process service on PostgreSQL (each test its own
# database in one private cluster): no list to keep, so a new test that starts a
# service runs on both stores. A test about sled alone says so in its own settings
# (local mode, the data-dir lock); the several-node tests run their own clusters.
echo "== the tests again, the service on PostgreSQL"
TIDINGS_TEST_STORE=postgres cargo test --locked --test it --features test-hooks
echo "== the systemd units (systemd-analyze verify and security, offline)"
./scripts/check-units.sh target/debug/tidings
echo "== the README's commands, as written"
TIDINGS_BIN=target/debug/tidings ./scripts/readme-check.sh
