"""LRN and Caffe-style pooling against plain NumPy transcriptions of their formulas."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnn_arch import layers


def lrn_reference(x, n=5, k=2.0, alpha=1e-4, beta=0.75):
  """The lecture's formula, channel by channel: sum over max(0, p-n/2) … min(P-1, p+n/2)."""
  channels = x.shape[-1]
  y = np.empty_like(x)
  for p in range(channels):
    lo, hi = max(0, p - n // 2), min(channels - 1, p + n // 2)
    y[..., p] = x[..., p] / (k + alpha * np.sum(x[..., lo:hi + 1] ** 2, axis=-1)) ** beta
  return y


def pool_reference(x, window, stride, padding, ceil_mode, op):
  """Caffe's pooling loop: windows clipped to the (padded) image, ceil or floor output size."""
  n, h, w, c = x.shape

  def out_size(size):
    span = (size + 2 * padding - window) / stride
    out = (math.ceil(span) if ceil_mode else math.floor(span)) + 1
    return out - 1 if ceil_mode and (out - 1) * stride >= size + padding else out

  oh, ow = out_size(h), out_size(w)
  y = np.zeros((n, oh, ow, c), x.dtype)
  for i in range(oh):
    for j in range(ow):
      top, left = i * stride - padding, j * stride - padding
      patch = x[:, max(top, 0):min(top + window, h), max(left, 0):min(left + window, w)]
      if op == 'max':
        y[:, i, j] = patch.max(axis=(1, 2))
      else:  # padded zeros count, so divide by the full window
        y[:, i, j] = patch.sum(axis=(1, 2)) / window ** 2
  return y


@pytest.mark.parametrize('size', [3, 5, 7])
def test_lrn_equals_formula(size):
  x = np.random.default_rng(0).normal(0, 20, (2, 4, 5, 16)).astype(np.float32)
  expected = lrn_reference(x, n=size)
  np.testing.assert_allclose(layers.local_response_norm(jnp.asarray(x), size), expected,
                             rtol=1e-5)
  # The formula matters: with alpha divided by n (PyTorch/Caffe) the result differs.
  assert not np.allclose(lrn_reference(x, n=size, alpha=1e-4 / size), expected, rtol=1e-3)


def test_lrn_module_uses_alexnet_constants():
  x = np.random.default_rng(1).normal(0, 30, (1, 3, 3, 96)).astype(np.float32)
  np.testing.assert_allclose(layers.LRN().apply({}, jnp.asarray(x)), lrn_reference(x), rtol=1e-5)


@pytest.mark.parametrize('op,size,window,stride,padding,ceil_mode', [
    ('max', 112, 3, 2, 0, True),   # GoogLeNet: 112 → 56 (floor mode would give 55)
    ('max', 14, 3, 2, 0, True),    # 14 → 7
    ('max', 13, 3, 2, 0, False),   # AlexNet: 13 → 6
    ('max', 10, 3, 2, 1, True),    # padding + ceil: last window must start inside the image
    ('max', 9, 2, 2, 0, True),
    ('max', 7, 3, 1, 1, False),    # Inception's same-size branch pool
    ('avg', 7, 3, 1, 1, False),    # ... its average-pooling twin (padded zeros count)
    ('avg', 14, 5, 3, 0, False),   # GoogLeNet's auxiliary head: 14 → 4
    ('avg', 8, 2, 2, 0, False),    # LeNet-5's subsampling
])
def test_pooling_equals_caffe_loop(op, size, window, stride, padding, ceil_mode):
  x = np.random.default_rng(2).normal(size=(2, size, size + 1, 3)).astype(np.float32)
  if op == 'max':
    y = layers.MaxPool(window, stride, padding, ceil_mode).apply({}, jnp.asarray(x))
  else:
    y = layers.AvgPool(window, stride, padding).apply({}, jnp.asarray(x))
  np.testing.assert_allclose(y, pool_reference(x, window, stride, padding, ceil_mode, op),
                             rtol=1e-6, atol=1e-6)


def test_ceil_mode_sizes_of_googlenet():
  sizes = [112]
  for _ in range(4):
    sizes.append(layers.pool_output_size(sizes[-1], 3, 2, ceil_mode=True))
  assert sizes == [112, 56, 28, 14, 7]
  assert layers.pool_output_size(112, 3, 2) == 55  # what floor mode would do


def test_pooling_is_differentiable_like_flax():
  import flax.linen as nn
  import jax
  x = jnp.asarray(np.random.default_rng(3).normal(size=(1, 6, 6, 2)).astype(np.float32))
  ours = jax.grad(lambda x: layers.MaxPool(2, 2).apply({}, x).sum())(x)
  flax = jax.grad(lambda x: nn.max_pool(x, (2, 2), (2, 2)).sum())(x)
  np.testing.assert_array_equal(ours, flax)
  ours = jax.grad(lambda x: (layers.AvgPool(3, 1, 1).apply({}, x) ** 2).sum())(x)
  flax = jax.grad(lambda x: (nn.avg_pool(x, (3, 3), padding=((1, 1), (1, 1)),
                                         count_include_pad=True) ** 2).sum())(x)
  np.testing.assert_allclose(ours, flax, rtol=1e-6)


@pytest.mark.parametrize('size, window, stride, padding, ceil_mode', [
    (13, 3, 2, 0, False), (14, 3, 2, 0, True), (10, 3, 2, 1, True), (7, 3, 1, 1, False),
    (8, 2, 2, 0, False)])
def test_max_pool_gradient_equals_xla_select_and_scatter(size, window, stride, padding,
                                                         ceil_mode):
  """The hand-written gradient: to the first maximum of each window, ties included (the input
  takes 4 values only, so most windows tie), as lax.reduce_window's gradient does."""
  x = jnp.asarray(np.random.default_rng(4).integers(0, 4, (2, size, size + 1, 3)), jnp.float32)
  g = jnp.asarray(np.random.default_rng(5).normal(size=layers.max_pool(
      x, window, stride, padding, ceil_mode).shape), jnp.float32)
  pads = ((0, 0), *layers._pads(x, window, stride, padding, ceil_mode), (0, 0))
  reference = lambda x: jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, window, window, 1),
                                              (1, stride, stride, 1), pads)
  ours = lambda x: layers.max_pool(x, window, stride, padding, ceil_mode)
  np.testing.assert_array_equal(ours(x), reference(x))
  np.testing.assert_array_equal(jax.vjp(ours, x)[1](g)[0], jax.vjp(reference, x)[1](g)[0])


def test_average_pool_without_the_padding_averages_only_the_image():
  """TF's SAME average pool (PyTorch's count_include_pad=False), as in the released Inception-v4
  and Inception-ResNet-v2: a corner window of a 3×3 pool holds 4 pixels, an edge window 6."""
  x = np.random.default_rng(4).normal(size=(2, 5, 6, 3)).astype(np.float32)
  y = np.asarray(layers.AvgPool(3, 1, 1, count_padding=False).apply({}, jnp.asarray(x)))
  for i, j in ((0, 0), (0, 3), (2, 2), (4, 5)):
    window = x[:, max(i - 1, 0):i + 2, max(j - 1, 0):j + 2]
    np.testing.assert_allclose(y[:, i, j], window.mean(axis=(1, 2)), rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(layers.AvgPool(3, 1, 1, count_padding=False).apply({}, jnp.ones((1, 4, 4, 1))), 1.0)


@pytest.mark.parametrize('beta,ulps', [(0.75, 3), (0.5, 8), (1.3, 8)])  # XLA's pow: ~6 ulps
def test_power_equals_float64_pow(beta, ulps):
  d = np.geomspace(1e-3, 1e6, 10_001).astype(np.float32)
  expected = d.astype(np.float64) ** beta
  got = np.asarray(jax.jit(layers.power, static_argnums=1)(jnp.asarray(d), beta), np.float64)
  np.testing.assert_allclose(got, expected, rtol=ulps * 2.0 ** -23)
  gradient = jax.vmap(jax.grad(layers.power), in_axes=(0, None))(jnp.asarray(d), beta)
  np.testing.assert_allclose(gradient, beta * d.astype(np.float64) ** (beta - 1), rtol=1e-5)
