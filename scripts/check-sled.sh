#!/usr/bin/env bash
# vendor/sled is sled as published on crates.io plus vendor/sled.patch, and nothing else
# (vendor/PATCHES.md). This takes the published crate through cargo (which checks it
# against the checksum in vendor/upstream/Cargo.lock), checks that checksum again here,
# removes what is not vendored, applies the patch and compares the result with
# vendor/sled byte for byte.
#
#   scripts/check-sled.sh           check; any difference fails, and is shown
#   scripts/check-sled.sh --write   make vendor/sled so (after changing the patch or the
#                                   version); review the result with git diff
#   scripts/check-sled.sh --make-patch
#                                   write vendor/sled.patch from vendor/sled (after
#                                   editing vendor/sled); review it with git diff
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "check-sled: $*" >&2; exit 1; }

manifest=vendor/upstream/Cargo.toml
lock=vendor/upstream/Cargo.lock
version="$(sed -n 's/^sled = "=\(.*\)"$/\1/p' "$manifest")"
[ -n "$version" ] || fail "no exact sled version (sled = \"=X.Y.Z\") in $manifest"

cargo fetch --quiet --locked --manifest-path "$manifest" \
  || fail "cargo could not fetch sled $version (or it did not match $lock)"
expected="$(awk -v v="$version" '
  $0 == "name = \"sled\"" { name = 1; next }
  name && $0 == "version = \"" v "\"" { ver = 1; next }
  name && ver && /^checksum = / { gsub(/"/, "", $3); print $3; exit }
  /^\[\[package\]\]/ { name = 0; ver = 0 }' "$lock")"
[ -n "$expected" ] || fail "$lock has no checksum for sled $version"
crate="$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"sled-$version.crate" | head -n1)"
actual="$(sha256sum "$crate" | cut -d' ' -f1)"
[ "$actual" = "$expected" ] || fail "$crate has checksum $actual, $lock says $expected"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tar xzf "$crate" -C "$work"
tree="$work/sled-$version"
# Not vendored: sled's tests (and so its lock file and dev manifest), its repository's
# files and pictures. What the build uses is all here.
not_vendored=(.cargo_vcs_info.json .github .gitignore .rustfmt.toml CHANGELOG.md
  CONTRIBUTING.md Cargo.lock Cargo.toml.orig RELEASE_CHECKLIST.md SAFETY.md SECURITY.md
  art code-of-conduct.md tests tsan_suppressions.txt)
(cd "$tree" && rm -rf "${not_vendored[@]}")
if [ "${1:-}" = "--make-patch" ]; then
  # git diff exits 1 when the trees differ, as they do.
  git diff --no-index --no-color --src-prefix=a/ --dst-prefix=b/ "$tree" vendor/sled \
    | sed "s#a$tree/#a/#g; s#b$tree/#b/#g; s#b/vendor/sled/#b/#g; s#a/vendor/sled/#a/#g" \
    > vendor/sled.patch || true
  echo "vendor/sled.patch now holds vendor/sled's changes to sled $version"
  exit 0
fi
(cd "$tree" && git apply --whitespace=nowarn) < vendor/sled.patch \
  || fail "vendor/sled.patch does not apply to sled $version"

if [ "${1:-}" = "--write" ]; then
  rm -rf vendor/sled
  cp -r "$tree" vendor/sled
  echo "vendor/sled is now sled $version plus vendor/sled.patch"
  exit 0
fi
if ! diff -r "$tree" vendor/sled; then
  fail "vendor/sled is not sled $version plus vendor/sled.patch (the differences are above); change the patch, not vendor/sled, then run scripts/check-sled.sh --write"
fi
echo "vendor/sled is sled $version (sha256 $actual) plus vendor/sled.patch, byte for byte"
