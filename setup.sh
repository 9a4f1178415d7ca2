#!/usr/bin/env bash
# One-time set-up on Debian/Ubuntu with Python 3.11: a virtual environment in .venv with the
# project's requirements (and pytest with --test). Safe to rerun: it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")"
requirements=requirements.txt
[[ "${1:-}" == --test ]] && requirements=requirements-test.txt

if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then  # Debian splits venv out of python3
  sudo=$([[ $(id -u) == 0 ]] || echo sudo)
  $sudo apt-get update -qq && $sudo apt-get install -y -qq python3-venv
fi
[[ -x .venv/bin/python ]] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r "$requirements"
