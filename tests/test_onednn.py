"""cnn_arch.onednn: oneDNN's convolutions compute lax's convolution, forward and backward."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnn_arch import cpu_conv, onednn

needs_onednn = pytest.mark.skipif(
    not onednn.available(), reason='oneDNN handler not built: python -m cnn_arch.onednn --build')


def test_the_handler_is_built_where_onednn_is_installed():
  """setup.sh installs oneDNN on x86-64 Linux and builds the handler: a failed build must not
  pass for a machine without oneDNN."""
  if not onednn.library_path().with_name('libdnnl.so.3').exists():
    pytest.skip('oneDNN is not installed in this environment')
  assert onednn.available(), 'python -m cnn_arch.onednn --build'


@needs_onednn
@pytest.mark.parametrize('shape, kernel, stride, padding, groups, features', [
    ((2, 14, 14, 8), 3, 1, [(1, 1), (1, 1)], 1, 8),      # ResNet's 3×3
    ((2, 16, 16, 6), 3, 2, [(1, 1), (1, 1)], 1, 12),     # its downsampling 3×3
    ((2, 16, 16, 6), 1, 2, [(0, 0), (0, 0)], 1, 12),     # its projection shortcut
    ((2, 32, 32, 3), 7, 2, [(3, 3), (3, 3)], 1, 16),     # its first layer, on the image
    ((2, 35, 35, 3), 11, 4, [(0, 0), (0, 0)], 1, 12),    # AlexNet's conv1: rows left over
    ((2, 27, 27, 8), 5, 1, [(2, 2), (2, 2)], 2, 12),     # AlexNet's conv2, two towers
    ((2, 16, 16, 4), 3, 2, [(0, 1), (0, 1)], 1, 12),     # uneven padding
    ((3, 5, 7, 4), 3, 1, [(2, 0), (1, 2)], 1, 5),        # not square
    ((2, 2, 2, 16), 3, 1, [(1, 1), (1, 1)], 1, 8),       # a map smaller than the kernel
])
def test_onednn_computes_what_lax_computes(shape, kernel, stride, padding, groups, features):
  """The output, input gradient and kernel gradient of lax's convolution, to float32 rounding
  (oneDNN sums in another order)."""
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal(shape, np.float32))
  w = jnp.asarray(rng.standard_normal((kernel, kernel, shape[-1] // groups, features),
                                      np.float32))
  strides, pads = (stride, stride), tuple(map(tuple, padding))
  ours = lambda x, w: onednn.convolution(x, w, strides, pads, groups)
  reference = lambda x, w: jax.lax.conv_general_dilated(
      x, w, strides, pads, dimension_numbers=cpu_conv.NHWC, feature_group_count=groups)
  assert 'cnn_zoo_onednn' in jax.jit(ours).lower(x, w).as_text()
  expected = jax.jit(reference)(x, w)
  np.testing.assert_allclose(jax.jit(ours)(x, w), expected, rtol=1e-5, atol=1e-4)
  loss = lambda conv: lambda x, w: jnp.sum(jnp.sin(conv(x, w)))
  grads = jax.jit(jax.grad(loss(ours), (0, 1)))(x, w)
  for grad, want in zip(grads, jax.jit(jax.grad(loss(reference), (0, 1)))(x, w)):
    np.testing.assert_allclose(grad, want, rtol=1e-4, atol=1e-4 * float(jnp.max(jnp.abs(want))))


@needs_onednn
def test_cpu_conv_hands_the_chosen_convolutions_to_onednn(monkeypatch):
  """cpu_conv.Conv computes a convolution with oneDNN exactly when its key is chosen."""
  x, w = jnp.ones((2, 8, 8, 4)), jnp.ones((3, 3, 4, 6))
  key = cpu_conv.convolution_key(x, w, (1, 1), ((1, 1), (1, 1)), 1)
  assert key == '2x8x8x4 3x3x4x6 s1x1 p1,1,1,1 float32'

  def by_onednn(x, w):  # traced afresh each time: the choice is read when tracing
    conv = lambda x, w: cpu_conv.conv_general_dilated(x, w, (1, 1), 'SAME',
                                                      dimension_numbers=cpu_conv.NHWC)
    return 'cnn_zoo_onednn' in jax.jit(conv).lower(x, w).as_text()
  assert not by_onednn(x, w)
  monkeypatch.setitem(cpu_conv.ONEDNN, key, True)
  assert by_onednn(x, w)
  assert not by_onednn(x, w[:, :, :, :5])


def test_building_without_onednn_says_what_to_install(tmp_path):
  with pytest.raises(SystemExit, match='pip install onednn-cpu-gomp'):
    onednn.build(prefix=tmp_path)
