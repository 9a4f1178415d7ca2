"""cnn_train.cpu_kernels: the strided convolutions of a model timed once per CPU, and cached."""
import json

import jax
import jax.numpy as jnp
import pytest

import cnn_arch
from cnn_arch import cpu_conv
from cnn_train import cpu_kernels


@pytest.fixture
def fresh_choices(monkeypatch, tmp_path):
  monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path))
  monkeypatch.setattr(cpu_conv, 'INPUT_GRADIENTS', {})
  return tmp_path


def test_resnet18s_strided_convolutions_are_timed_once_and_cached(fresh_choices):
  """ResNet-18 downsamples three times, each by a strided 3×3 and a strided 1×1 shortcut (He
  et al., Table 1 and 'option B'): six choices. The first layer's input is the image, whose
  gradient is never computed: not timed. The second call reads them from the cache."""
  model = cnn_arch.create_model('resnet18', 10)
  images = jax.ShapeDtypeStruct((2, 128, 128, 3), jnp.float32)
  convolutions = cpu_kernels.convolutions(model, images)
  assert sum(convolutions.values()) == 20  # 1 + 16 + 3 shortcuts, as the paper counts
  line = cpu_kernels.choose_input_gradients(model, images)
  assert line.startswith('timed the input gradients of 6 strided convolution(s)')
  assert len(cpu_conv.INPUT_GRADIENTS) == 6
  assert set(cpu_conv.INPUT_GRADIENTS.values()) <= {'xla', 'phases'}
  assert not any(key.startswith('2x128x128x3 ') for key in cpu_conv.INPUT_GRADIENTS)
  with open(cpu_kernels.cache_path()) as f:
    cached = json.load(f)
  assert cached == {cpu_kernels.machine_key(): cpu_conv.INPUT_GRADIENTS}
  cpu_conv.INPUT_GRADIENTS.clear()
  assert cpu_kernels.choose_input_gradients(model, images) is None  # nothing timed
  assert cpu_conv.INPUT_GRADIENTS == cached[cpu_kernels.machine_key()]


def test_the_faster_form_is_chosen(fresh_choices, monkeypatch):
  """'phases' only when it beats XLA's by the margin; a broken cache file is timed afresh."""
  model = cnn_arch.create_model('resnet18', 10)
  images = jax.ShapeDtypeStruct((2, 128, 128, 3), jnp.float32)
  path = cpu_kernels.cache_path()
  (fresh_choices / 'cnn-zoo-jax').mkdir()
  with open(path, 'w') as f:
    f.write('{not json')
  timings = iter([{'xla': 10.0, 'phases': 5.0}, {'xla': 10.0, 'phases': 9.5}] * 3)
  monkeypatch.setattr(cpu_kernels, 'input_gradient_ms', lambda *layer: next(timings))
  assert cpu_kernels.choose_input_gradients(model, images).endswith(
      f'3 faster by phases (cached in {path})')
  assert sorted(cpu_conv.INPUT_GRADIENTS.values()) == ['phases'] * 3 + ['xla'] * 3


def test_a_cache_that_cannot_be_written_does_not_stop_the_run(fresh_choices, monkeypatch):
  """A read-only or broken cache folder: the choices still apply, the line says so."""
  blocked = fresh_choices / 'a-file'
  blocked.write_text('')
  monkeypatch.setenv('XDG_CACHE_HOME', str(blocked))
  monkeypatch.setattr(cpu_kernels, 'input_gradient_ms', lambda *layer: {'xla': 1, 'phases': 2})
  model = cnn_arch.create_model('resnet18', 10)
  line = cpu_kernels.choose_input_gradients(model, jax.ShapeDtypeStruct((2, 128, 128, 3),
                                                                        jnp.float32))
  assert 'cannot keep them in' in line and line.endswith('every start times them')
  assert list(cpu_conv.INPUT_GRADIENTS.values()) == ['xla'] * 6
