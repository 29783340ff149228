# Sourced by scripts/package and scripts/check-windows.sh: the Windows cross-build from
# Debian and the Wine prefix the Windows checks run in (docs/windows.md).
#
#   windows_toolchain   installs what the cross-build, Wine and wixl need (as root,
#                       when missing) and fails loudly when it cannot
#   windows_cargo ARGS  Debian's cargo with .cargo/windows.toml (-Zbuild-std)
#   windows_build       the release tidings.exe and tidingsw.exe, stripped, in $WINDOWS_BIN
#   msi_version         the crate's version as an MSI takes it (three numbers:
#                       0.2.0-rc.1 becomes 0.2.0)
#   wine_prefix DIR     a fresh Wine prefix in DIR with the test-only DLL shim; exports
#                       WINEPREFIX and friends for the wine commands that follow

WINDOWS_TARGET_DIR=target/windows
WINDOWS_BIN="$WINDOWS_TARGET_DIR/x86_64-pc-windows-gnu/release"
# rustc-web from bookworm-security; tidings needs at least this compiler.
WINDOWS_RUSTC_MIN=1.88

windows_toolchain() {
  local packages=(rustc-web cargo-web rust-web-src gcc-mingw-w64-x86-64 wine64 wixl msitools binutils)
  local missing=() pkg
  for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
      echo "the Windows build needs: ${missing[*]} (run as root, or apt-get install them)" >&2
      return 1
    fi
    echo "installing the Windows toolchain: ${missing[*]}"
    # Without the update apt may pick bookworm's older rustc-web (1.85), too old here.
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" || {
      echo "cannot install the Windows toolchain (${missing[*]}); the Windows checks cannot run" >&2
      return 1
    }
    apt-get clean  # the downloaded .debs are not needed again; CI disk is short
  fi
  local version
  version="$(/usr/bin/rustc --version | awk '{print $2}')"
  if [ "$(printf '%s\n%s\n' "$WINDOWS_RUSTC_MIN" "$version" | sort -V | head -n1)" != "$WINDOWS_RUSTC_MIN" ]; then
    echo "Debian's rustc is $version; the Windows build needs $WINDOWS_RUSTC_MIN or later (apt-get update, then install rustc-web again)" >&2
    return 1
  fi
}

windows_cargo() {
  # PATH picks Debian's cargo and rustc over rustup's; RUSTC_BOOTSTRAP allows -Zbuild-std.
  RUSTC_BOOTSTRAP=1 PATH=/usr/bin:/bin cargo --config .cargo/windows.toml "$@" \
    --locked --target-dir "$WINDOWS_TARGET_DIR"
}

windows_build() {
  windows_cargo build --release --features windowless --bins
  ls -l "$WINDOWS_BIN/tidings.exe" "$WINDOWS_BIN/tidingsw.exe"
}

msi_version() {
  local version
  version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)"
  echo "${version%%-*}"
}

wine_prefix() {
  export WINEPREFIX="$1" WINEDEBUG=-all WINEARCH=win64
  # No desktop menu entries or file associations on the host for what the .msi installs.
  export WINEDLLOVERRIDES="winemenubuilder.exe=d;mscoree=d;mshtml=d"
  rm -rf "$WINEPREFIX"
  mkdir -p "$WINEPREFIX"
  wine wineboot -i >/dev/null 2>&1 || true
  local shim="$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"
  test -d "$(dirname "$shim")" || { echo "wineboot made no prefix in $WINEPREFIX" >&2; return 1; }
  x86_64-w64-mingw32-gcc -O2 -shared -o "$shim" \
    packaging/windows/test-shim/bcryptprimitives.c -ladvapi32
}
