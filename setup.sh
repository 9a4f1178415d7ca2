#!/usr/bin/env bash
# One-time set-up on Debian/Ubuntu with Python 3.11: Debian's Fashion-MNIST files (the offline
# default dataset), a virtual environment in .venv with the project's requirements and JAX's
# CUDA build where the NVIDIA driver can run it, and pytest with --test. Safe to rerun: it only
# adds what is missing (and swaps the JAX build when the choice changes).
set -euo pipefail
cd "$(dirname "$0")"
usage='usage: ./setup.sh [--test] [--jax=auto|cpu|cuda|cuda12|cuda13] (--test: also the test'
usage+=' requirements; --jax: which JAX build, auto = CUDA when an NVIDIA driver can run it)'
requirements=requirements.txt
jax=auto
for arg in "$@"; do
  case $arg in
    --test) requirements='requirements-test.txt' ;;  # quoted: not a subtraction (shellcheck)
    --jax=auto | --jax=cpu | --jax=cuda | --jax=cuda12 | --jax=cuda13) jax=${arg#--jax=} ;;
    -h | --help) echo "$usage"; exit 0 ;;
    *) echo "setup.sh: unknown flag '$arg'; $usage" >&2; exit 2 ;;
  esac
done

# JAX's CUDA wheels bring CUDA and cuDNN with them: they need only the driver, >= 580 for CUDA 13
# (and GPUs of compute capability >= 7.5), >= 525 for CUDA 12 (JAX's installation docs).
# A missing or failing nvidia-smi means no usable driver.
case $jax in
  cpu | cuda12 | cuda13) build=$jax found="--jax=$jax" ;;
  *)
    driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null) || driver=
    driver=${driver%%$'\n'*}  # a line per GPU, the same driver
    if [[ ! $driver =~ ^[0-9]+\. ]]; then
      build=cpu found="no NVIDIA driver found (nvidia-smi)"
    elif (( ${driver%%.*} >= 580 )); then
      build=cuda13 found="NVIDIA driver $driver found"
      # Driver 580 still runs Maxwell to Volta GPUs, which CUDA 13 dropped: the oldest GPU decides.
      cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null) || cap=
      cap=$(sort -n <<<"$cap") && cap=${cap%%$'\n'*}
      if [[ $cap =~ ^[0-9]+\.[0-9]$ ]] && (( ${cap/./} < 75 )); then
        build=cuda12 found+=" with a GPU of compute capability $cap (CUDA 13 needs >= 7.5)"
      fi
    elif (( ${driver%%.*} >= 525 )); then
      build=cuda12 found="NVIDIA driver $driver found"
    else
      build=cpu found="NVIDIA driver $driver is too old for JAX's CUDA builds (they need >= 525)"
    fi
    if [[ $jax == cuda && $build == cpu ]]; then build=cuda13 found+=", yet --jax=cuda"; fi
    ;;
esac
if [[ $build == cpu ]]; then
  echo "setup.sh: $found: installing JAX's CPU build"
else
  skip=$([[ $jax == auto ]] && echo '; --jax=cpu to skip' || true)
  echo "setup.sh: $found: installing JAX's CUDA ${build#cuda} build (jax[$build])$skip"
fi

apt_packages=()
python3 -c 'import ensurepip, venv' 2>/dev/null || apt_packages+=(python3-venv)
[[ -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]] ||
  apt_packages+=(dataset-fashion-mnist)
# The C++ compiler that builds the oneDNN convolutions' handler (x86-64 Linux, where PyPI has oneDNN).
[[ $(uname -m) != x86_64 ]] || command -v "${CXX:-c++}" >/dev/null || apt_packages+=(g++)
if (( ${#apt_packages[@]} )); then
  sudo=$([[ $(id -u) == 0 ]] || echo sudo)
  # Without apt (or rights), Fashion-MNIST is downloaded by TFDS at the first run instead.
  { $sudo apt-get update -qq && $sudo apt-get install -y -qq "${apt_packages[@]}"; } ||
    echo "setup.sh: could not install ${apt_packages[*]} with apt-get" >&2
fi
[[ -x .venv/bin/python ]] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r "$requirements"
# A previous run's other build would stay: its CUDA plugin would still claim the GPUs.
stale=()
for cuda in cuda12 cuda13; do
  [[ $cuda == "$build" ]] || stale+=("jax-$cuda-plugin" "jax-$cuda-pjrt")
done
.venv/bin/python -m pip uninstall -qq -y "${stale[@]}"
# oneDNN's convolutions for XLA:CPU, built against this environment's jaxlib; without them
# (no compiler, another CPU architecture) XLA's own convolutions run.
if [[ -e .venv/lib/libdnnl.so.3 ]]; then
  .venv/bin/python -m cnn_arch.onednn_build >/dev/null ||
    echo "setup.sh: XLA's own convolutions will run on CPUs" >&2
fi
if [[ $build != cpu ]]; then
  # The same lower bound as requirements.txt's jax; the extra pins jaxlib and the plugin to jax.
  jax_min=$(sed -n 's/^jax>=\([0-9.]*\).*/\1/p' requirements.txt)
  .venv/bin/python -m pip install -q "jax[$build]>=$jax_min"
fi
