"""cpu_conv.Conv: the function lax computes, with its own CPU kernel gradient and small-map forward."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnn_arch import cpu_conv


@pytest.mark.parametrize('shape, kernel, stride, padding, groups, features, method', [
    ((2, 27, 27, 8), 5, 1, [(2, 2), (2, 2)], 2, 12, 'patches'),  # AlexNet's conv2, two towers
    ((2, 15, 15, 6), 7, 2, [(3, 3), (3, 3)], 3, 12, 'patches'),
    ((2, 9, 9, 16), 1, 1, 'SAME', 1, 12, 'patches'),             # GoogLeNet's 1×1 reductions
    ((2, 16, 16, 6), 1, 2, 'SAME', 1, 12, 'patches'),            # ResNet's projection shortcut
    ((2, 14, 14, 8), 3, 1, 'SAME', 1, 8, 'swapped'),             # ResNet's 3×3
    ((2, 16, 16, 6), 3, 2, 'SAME', 1, 12, 'swapped'),            # ResNet's downsampling 3×3
    ((2, 13, 13, 8), 5, 1, [(2, 2), (2, 2)], 1, 12, 'swapped'),  # AlexNet's conv2, one tower
    ((2, 16, 16, 4), 3, 2, [(0, 1), (0, 1)], 1, 12, 'swapped'),  # uneven padding
    ((2, 35, 35, 3), 11, 4, 'VALID', 1, 12, 'xla'),  # AlexNet's conv1: phases outsize output
    ((2, 15, 15, 4), 3, 2, 'VALID', 1, 12, 'xla'),
    ((2, 32, 32, 3), 7, 2, [(3, 3), (3, 3)], 1, 64, 'xla'),      # ResNet's conv1: the image
])
def test_conv_computes_what_lax_computes(shape, kernel, stride, padding, groups, features,
                                         method):
  """cpu_conv.Conv's convolution: the same output bit for bit, the same input gradient (XLA's
  own), and the same kernel gradient up to float32 rounding, whichever way it is computed."""
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal(shape, np.float32))
  w = jnp.asarray(rng.standard_normal((kernel, kernel, shape[-1] // groups, features),
                                      np.float32))
  numbers = jax.lax.conv_dimension_numbers(x.shape, w.shape, cpu_conv.NHWC)
  ours = lambda x, w: cpu_conv.conv_general_dilated(
      x, w, (stride, stride), padding, dimension_numbers=numbers, feature_group_count=groups)
  reference = lambda x, w: jax.lax.conv_general_dilated(
      x, w, (stride, stride), padding, dimension_numbers=cpu_conv.NHWC,
      feature_group_count=groups)
  out = jax.jit(ours)(x, w)
  assert cpu_conv.kernel_gradient_method(x.shape, w.shape, out.shape, (stride, stride),
                                       groups) == method
  assert ('custom_vjp_call' in str(jax.make_jaxpr(ours)(x, w))) == (method != 'xla')
  np.testing.assert_array_equal(out, jax.jit(reference)(x, w))
  loss = lambda conv: lambda x, w: jnp.sum(jnp.sin(conv(x, w)))
  grads = jax.jit(jax.grad(loss(ours), (0, 1)))(x, w)
  expected = jax.jit(jax.grad(loss(reference), (0, 1)))(x, w)
  np.testing.assert_array_equal(grads[0], expected[0])
  np.testing.assert_allclose(grads[1], expected[1], rtol=1e-4, atol=1e-4)
  # XLA swaps a convolution's operands back when its kernel outsizes its image, into a
  # reversed convolution that XLA:CPU runs 100× slower
  hlo = jax.jit(jax.grad(loss(ours), 1)).lower(x, w).compile().as_text()
  assert 'reversal' not in hlo


@pytest.mark.parametrize('shape, kernel, stride, padding', [
    ((2, 2, 2, 16), 3, 1, 'SAME'),             # VGG's conv5 on a 32×32 input
    ((2, 4, 3, 8), 5, 2, [(2, 2), (1, 3)]),
])
def test_conv_of_a_map_smaller_than_its_kernel_is_a_matmul(shape, kernel, stride, padding):
  """Such a convolution is one product of patches and kernel (XLA:CPU's own is 70× slower):
  the same output and gradients as lax's, and no convolution left in the compiled step."""
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.standard_normal(shape, np.float32))
  w = jnp.asarray(rng.standard_normal((kernel, kernel, shape[-1], 12), np.float32))
  numbers = jax.lax.conv_dimension_numbers(x.shape, w.shape, cpu_conv.NHWC)
  ours = lambda x, w: cpu_conv.conv_general_dilated(x, w, (stride, stride), padding,
                                                  dimension_numbers=numbers)
  reference = lambda x, w: jax.lax.conv_general_dilated(x, w, (stride, stride), padding,
                                                        dimension_numbers=cpu_conv.NHWC)
  np.testing.assert_allclose(ours(x, w), reference(x, w), rtol=1e-5, atol=1e-5)
  loss = lambda conv: lambda x, w: jnp.sum(jnp.sin(conv(x, w)))
  for got, expected in zip(jax.grad(loss(ours), (0, 1))(x, w),
                           jax.grad(loss(reference), (0, 1))(x, w)):
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
  hlo = jax.jit(jax.grad(loss(ours), (0, 1))).lower(x, w).compile().as_text()
  assert 'convolution' not in hlo


@pytest.mark.parametrize('shape, kernel, stride, padding', [
    ((2, 16, 16, 6), 3, 2, [(1, 1), (1, 1)]),   # ResNet's downsampling 3×3
    ((2, 16, 15, 6), 1, 2, [(0, 0), (0, 0)]),   # its projection shortcut: taps in one phase
    ((2, 17, 17, 4), 3, 2, [(0, 0), (0, 0)]),   # Inception's VALID reductions
    ((2, 15, 15, 4), 7, 2, [(3, 3), (3, 3)]),
    ((2, 16, 16, 4), 3, 2, [(0, 1), (0, 1)]),   # uneven padding
    ((2, 12, 12, 4), 5, 3, [(2, 2), (2, 2)]),
])
def test_input_gradient_by_phases_is_xlas(shape, kernel, stride, padding, monkeypatch):
  """With the phases chosen for a strided convolution, its input gradient is the one XLA
  computes (to float32 rounding), and its output and kernel gradient are unchanged."""
  rng = np.random.default_rng(2)
  x = jnp.asarray(rng.standard_normal(shape, np.float32))
  w = jnp.asarray(rng.standard_normal((kernel, kernel, shape[-1], 8), np.float32))
  strides = (stride, stride)
  key = cpu_conv.input_gradient_key(x, w, strides, tuple(map(tuple, padding)), 1)
  monkeypatch.setitem(cpu_conv.INPUT_GRADIENTS, key, 'phases')
  ours = lambda x, w: cpu_conv.conv_general_dilated(x, w, strides, padding,
                                                  dimension_numbers=cpu_conv.NHWC)
  reference = lambda x, w: jax.lax.conv_general_dilated(x, w, strides, padding,
                                                        dimension_numbers=cpu_conv.NHWC)
  loss = lambda conv: lambda x, w: jnp.sum(jnp.sin(conv(x, w)))
  np.testing.assert_array_equal(jax.jit(ours)(x, w), jax.jit(reference)(x, w))
  grads = jax.jit(jax.grad(loss(ours), (0, 1)))(x, w)
  expected = jax.jit(jax.grad(loss(reference), (0, 1)))(x, w)
  np.testing.assert_allclose(grads[0], expected[0], rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(grads[1], expected[1], rtol=1e-4, atol=1e-4)
  hlo = jax.jit(jax.grad(loss(ours), 0)).lower(x, w).compile().as_text()
  assert 'lhs_dilate' not in hlo  # XLA's own form, the zero-dilated output gradient, is gone
