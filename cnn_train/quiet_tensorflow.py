"""TensorFlow's import without the C++ start-up lines that TF_CPP_MIN_LOG_LEVEL should hide.

TensorFlow 2.21 logs through absl while its libraries load, before absl::InitializeLog and so
before TF_CPP_MIN_LOG_LEVEL applies: where oneDNN is on (by default on CPUs with AVX-512, or with
TF_ENABLE_ONEDNN_OPTS=1) every process that imports it prints, twice,

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:1796230148.354042   18524 port.cc:153] oneDNN custom operations are on. ...

No variable or API reaches absl's C++ log level before that. So the first import of TensorFlow
after the library's (its own, TFDS's, clu's or a user's script's) runs with file descriptor 2
sent to a file, and the lines that TF_CPP_MIN_LOG_LEVEL lets through are written back.
"""
import contextlib
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile

# absl's line prefix: severity, date, time, thread, file:line]
ABSL_LINE = re.compile(r'[IWEF]\d{4} \d\d:\d\d:[\d.]+ +\d+ [^\]]+\] ')
ABSL_BANNER = 'WARNING: All log messages before absl::InitializeLog() is called are written to'
SEVERITIES = 'IWEF'  # TF_CPP_MIN_LOG_LEVEL 0, 1, 2, 3 hides those before it


def shown_lines(text, min_level):
  """The lines of `text` that TF_CPP_MIN_LOG_LEVEL=min_level shows: absl's lines of a severity
  below it go, and absl's banner with them; any other line stays."""
  def shown(line):
    if ABSL_LINE.match(line):
      return SEVERITIES.index(line[0]) >= min_level
    return min_level == 0 or not line.startswith(ABSL_BANNER)
  return ''.join(filter(shown, text.splitlines(keepends=True)))


@contextlib.contextmanager
def start_up_lines_filtered():
  """Within this block, what reaches file descriptor 2 (C++ and Python alike) is held back,
  then written to sys.stderr less the lines that TF_CPP_MIN_LOG_LEVEL hides."""
  try:
    min_level = int(os.environ.get('TF_CPP_MIN_LOG_LEVEL', '0'))
  except ValueError:
    min_level = 0
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as held:
    os.dup2(held.fileno(), 2)
    try:
      yield
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      held.seek(0)
      sys.stderr.write(shown_lines(held.read().decode(errors='replace'), min_level))
      sys.stderr.flush()


class _FilteredLoader(importlib.abc.Loader):
  """TensorFlow's own loader, its module executed inside start_up_lines_filtered()."""

  def __init__(self, loader):
    self.loader = loader

  def create_module(self, spec):
    return self.loader.create_module(spec)

  def exec_module(self, module):
    try:
      with start_up_lines_filtered():
        self.loader.exec_module(module)
    finally:  # the module as a plain import leaves it
      module.__loader__ = module.__spec__.loader = self.loader

  def __getattr__(self, name):  # resources and the like: the wrapped loader's
    return getattr(self.loader, name)


class _FilteredImport(importlib.abc.MetaPathFinder):
  """Finds `tensorflow` through the other finders and wraps its loader; then steps aside."""

  def find_spec(self, name, path=None, target=None):
    if name != 'tensorflow' or self not in sys.meta_path:
      return None
    sys.meta_path.remove(self)  # once is enough, and the search below must not find us again
    spec = importlib.util.find_spec(name)
    if spec is not None and spec.loader is not None:
      spec.loader = _FilteredLoader(spec.loader)
    return spec


def install():
  """Filter TensorFlow's first import from now on (nothing to do if it was imported already)."""
  if 'tensorflow' not in sys.modules and not any(
      isinstance(finder, _FilteredImport) for finder in sys.meta_path):
    sys.meta_path.insert(0, _FilteredImport())
