"""Compile cnn_arch/onednn_conv.cc against this environment's oneDNN and jaxlib (setup.sh runs it):

    python -m cnn_arch.onednn_build

Its own module, not cnn_arch.onednn's: the package imports that one, and `python -m` on a module
already imported warns about it.
"""
import os
import subprocess
import sys
from pathlib import Path

import jax

from cnn_arch import onednn


def build(prefix=sys.prefix, compiler=None):
  """Compile onednn_conv.cc against the environment's oneDNN and jaxlib; returns the handler's
  path."""
  prefix = Path(prefix)
  header = prefix / 'include' / 'oneapi' / 'dnnl' / 'dnnl.hpp'
  library = prefix / 'lib' / 'libdnnl.so.3'
  if not header.exists() or not library.exists():
    raise SystemExit(f'{__name__}: oneDNN is not installed in {prefix}: pip install '
                     'onednn-cpu-gomp==2023.2.0 onednn-devel-cpu-gomp==2023.2.0')
  compiler = compiler or os.environ.get('CXX', 'c++')
  out = onednn.library_path(prefix)
  command = [compiler, '-O2', '-std=c++17', '-shared', '-fPIC', '-w', str(onednn.SOURCE),
             f'-I{prefix / "include"}', f'-I{jax.ffi.include_dir()}', f'-L{library.parent}',
             '-l:libdnnl.so.3', f'-Wl,-rpath,{library.parent}', '-o', str(out)]
  try:
    subprocess.run(command, check=True, capture_output=True, text=True)
  except FileNotFoundError:
    raise SystemExit(f'{__name__}: no C++ compiler ({compiler}): apt-get install g++, or set CXX')
  except subprocess.CalledProcessError as e:
    last = (e.stderr.strip().splitlines() or ['(no output)'])[-1]
    raise SystemExit(f'{__name__}: {compiler} failed on {onednn.SOURCE.name}: {last}')
  return out


def main():
  print(f'built {build()}')


if __name__ == '__main__':
  main()
