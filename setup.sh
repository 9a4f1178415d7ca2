#!/usr/bin/env bash
# One-time set-up on Debian/Ubuntu with Python 3.11: Debian's Fashion-MNIST files (the offline
# default dataset), a virtual environment in .venv with the project's requirements, and pytest
# with --test. Safe to rerun: it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")"
requirements=requirements.txt
[[ "${1:-}" == --test ]] && requirements=requirements-test.txt

apt_packages=()
python3 -c 'import ensurepip, venv' 2>/dev/null || apt_packages+=(python3-venv)
[[ -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]] ||
  apt_packages+=(dataset-fashion-mnist)
if (( ${#apt_packages[@]} )); then
  sudo=$([[ $(id -u) == 0 ]] || echo sudo)
  # Without apt (or rights), Fashion-MNIST is downloaded by TFDS at the first run instead.
  { $sudo apt-get update -qq && $sudo apt-get install -y -qq "${apt_packages[@]}"; } ||
    echo "setup.sh: could not install ${apt_packages[*]} with apt-get" >&2
fi
[[ -x .venv/bin/python ]] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r "$requirements"
