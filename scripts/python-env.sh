#!/usr/bin/env bash
# A Python environment for the tests that check tidings against independent
# implementations (today: Web Push message encryption, `http_ece` from PyPI). Made once
# in target/python; run again, it only checks that it is there.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/python
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import http_ece' 2>/dev/null; then
  exit 0
fi
mkdir -p target
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check 'http_ece==1.2.1'
echo "python environment ready: $venv (http_ece $("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("http_ece"))'))"
