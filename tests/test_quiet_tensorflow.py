"""No TensorFlow start-up line on any CPU: oneDNN forced on (as AVX-512 CPUs have it by default,
where TensorFlow logs it through absl before TF_CPP_MIN_LOG_LEVEL applies) and forced off."""
import os
import platform
import subprocess
import sys

import pytest

from cnn_train import quiet_tensorflow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# What TensorFlow 2.21 printed on importing it on a 2-core AVX-512 EPYC (issue 26), with a
# an absl warning and a line of Python between.
BANNER = ('WARNING: All log messages before absl::InitializeLog() is called are written to '
          'STDERR\n')
ONEDNN = ('I0000 00:00:1796230148.354042   18524 port.cc:153] oneDNN custom operations are on. '
          'You may see slightly different numerical results due to floating-point round-off '
          'errors from different computation orders. To turn them off, set the environment '
          'variable `TF_ENABLE_ONEDNN_OPTS=0`.\n')
WARNING = ('W0000 00:00:1796230149.000001   18524 port.cc:160] TF_ENABLE_ONEDNN_OPTS is not set to '
           "either '0', 'false', '1', or 'true'. Using the default setting: 1\n")
PYTHON = 'a line of Python\n'
PRINTED = BANNER + ONEDNN + PYTHON + BANNER + WARNING + ONEDNN


@pytest.mark.parametrize('level, shown', [
    (0, PRINTED),  # TF_CPP_MIN_LOG_LEVEL=0 asks for everything
    (1, PYTHON + WARNING),
    (2, PYTHON),  # the library's default
])
def test_the_start_up_lines_shown_are_those_tf_cpp_min_log_level_allows(level, shown):
  assert quiet_tensorflow.shown_lines(PRINTED, level) == shown


def python(code, onednn, **env):
  """Run `code` as a user's shell would: no TF_CPP_MIN_LOG_LEVEL, oneDNN forced on or off."""
  env = {k: v for k, v in os.environ.items() if k != 'TF_CPP_MIN_LOG_LEVEL'} | env
  env['TF_ENABLE_ONEDNN_OPTS'] = onednn
  return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=ROOT,
                        env=env, timeout=300)


@pytest.mark.parametrize('onednn', ['1', '0'])
def test_tensorflow_imported_first_prints_no_cpp_lines(onednn):
  """TF before JAX (a script of the user's, or the sweep's summary), through TFDS."""
  out = python('from cnn_train import input_pipeline; input_pipeline.tf.constant(1).numpy(); '
               'import tensorflow_datasets, cnn_train.trainer', onednn)
  assert out.returncode == 0 and out.stderr == '' and out.stdout == ''


# Each entry point, then TensorFlow as its run imports it (the weights command through the
# library's run directories).
@pytest.mark.parametrize('entry_point', ['train', 'eval', 'predict', 'bench', 'cnn_train.sweep',
                                         'weights, cnn_train.pretrained'])
def test_no_entry_point_lets_tensorflow_print_its_start_up_lines(entry_point):
  out = python(f'import {entry_point}; import tensorflow as tf; tf.constant(1).numpy()', '1')
  assert out.returncode == 0 and out.stderr == '', out.stderr[-2000:]


def test_a_users_settings_win():
  """TF_CPP_MIN_LOG_LEVEL=0 shows TensorFlow's lines; TF_ENABLE_ONEDNN_OPTS=0 turns oneDNN off."""
  code = ('import cnn_train; from tensorflow.python.util import _pywrap_util_port; '
          'print(_pywrap_util_port.IsMklEnabled())')
  out = python(code, '1', TF_CPP_MIN_LOG_LEVEL='0')
  if platform.machine() == 'x86_64':  # TensorFlow's x86 builds have oneDNN
    assert out.stdout == 'True\n' and 'oneDNN custom operations are on' in out.stderr
  out = python(code, '0')
  assert out.stdout == 'False\n' and out.stderr == ''


def test_an_error_in_the_import_still_reaches_the_screen(tmp_path):
  """What the import prints besides absl's lines (a traceback, a warning) is written back."""
  (tmp_path / 'tensorflow.py').write_text(
      'import sys\nprint("a warning of the import", file=sys.stderr)\n'
      'raise ImportError("a broken TensorFlow")\n')
  out = python('import cnn_train, tensorflow', '1', PYTHONPATH=f'{tmp_path}:{ROOT}')
  assert out.returncode == 1 and out.stderr.startswith('a warning of the import\n')
  assert out.stderr.rstrip().endswith('ImportError: a broken TensorFlow')
