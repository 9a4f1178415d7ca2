"""The few layers Flax lacks: LRN, Caffe-style (ceil-mode) pooling, global pooling; and `Conv`
(cnn_arch/cpu_conv.py: Flax's convolution, faster on CPUs).

The pooling and normalisation layers are modules, not functions, only so that the summary tool
sees them as rows of the per-layer table, as in the papers' tables. None of them has parameters.
"""
import functools
import math
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnn_arch.cpu_conv import Conv  # noqa: F401  (the networks' convolution)


def local_response_norm(x, size=5, k=2.0, alpha=1e-4, beta=0.75):
  """AlexNet's LRN over the channel (last) axis, exactly the lecture's formula.

      y_p = x_p / (k + alpha * sum_{j = p - size//2}^{p + size//2} x_j**2) ** beta

  with the sum clipped to the existing channels. `alpha` multiplies the plain sum: PyTorch's
  `LocalResponseNorm` (and Caffe's LRN) divide alpha by `size`, so their alpha = ours * size.
  """
  return (x / lrn_divisor(x, size, k, alpha, beta)).astype(x.dtype)


def lrn_divisor(x, size=5, k=2.0, alpha=1e-4, beta=0.75):
  """LRN's divisor (k + alpha * sum x_j**2) ** beta at every unit of x, in float32 (the sum of
  squares overflows in bf16). It is k**beta where activations are small: LRN then only scales."""
  half = size // 2
  window_sum = jax.lax.reduce_window(
      jnp.square(x.astype(jnp.float32)), 0.0, jax.lax.add,
      window_dimensions=(1,) * (x.ndim - 1) + (size,),
      window_strides=(1,) * x.ndim,
      padding=((0, 0),) * (x.ndim - 1) + ((half, half),))
  return power(k + alpha * window_sum, beta)


def power(d, beta):
  """d ** beta for positive d. AlexNet's and GoogLeNet's beta = 3/4 as sqrt(d) * sqrt(sqrt(d)):
  the same to 2 float32 ulps, and LRN's forward and backward 1.5-2.5x faster on a CPU, where
  pow is exp(beta log d) and its gradient another pow."""
  if beta == 0.75:
    root = jnp.sqrt(d)
    return root * jnp.sqrt(root)
  return d ** beta


def pool_output_size(size, window, stride, padding=0, ceil_mode=False):
  """Output length of a pooling window; ceil mode as Caffe (and PyTorch) define it."""
  span = size + 2 * padding - window
  if not ceil_mode:
    return span // stride + 1
  out = math.ceil(span / stride) + 1
  if (out - 1) * stride >= size + padding:  # the last window must start inside the image
    out -= 1
  return out


def _pads(x, window, stride, padding, ceil_mode):
  """(top, bottom), (left, right) padding of the spatial axes; ceil mode pads the bottom/right."""
  pads = []
  for size in x.shape[1:3]:
    out = pool_output_size(size, window, stride, padding, ceil_mode)
    extra = (out - 1) * stride + window - (size + 2 * padding)
    pads.append((padding, padding + max(extra, 0)))
  return pads


def max_pool(x, window, stride, padding=0, ceil_mode=False):
  """Max over square windows of an NHWC array, as the max of the window² strided views.

  The same values as `lax.reduce_window`, and the same gradient (all of it to the first of tied
  maxima, as PyTorch and Caffe), written by hand: XLA's CPU gradient of reduce_window
  (select-and-scatter) is 5× slower, and autodiff of the views' maxima 1.2–2.4× slower.
  """
  x = jnp.pad(x, ((0, 0), *_pads(x, window, stride, padding, ceil_mode), (0, 0)),
              constant_values=-jnp.inf)
  return _max_of_views(x, window, stride)


def _window_views(x, window, stride):
  rows, cols = ((n - window) // stride + 1 for n in x.shape[1:3])
  return [x[:, i:i + stride * (rows - 1) + 1:stride, j:j + stride * (cols - 1) + 1:stride]
          for i in range(window) for j in range(window)]


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def _max_of_views(x, window, stride):
  return functools.reduce(jnp.maximum, _window_views(x, window, stride))


def _max_of_views_forward(x, window, stride):
  y = _max_of_views(x, window, stride)
  return y, (x, y)


def _max_of_views_backward(window, stride, saved, grad_out):
  x, y = saved
  views, scatter = jax.vjp(lambda x: _window_views(x, window, stride), x)
  taken, grads = jnp.zeros(y.shape, bool), []
  for view in views:  # the first view holding the maximum takes its gradient
    hit = (view == y) & ~taken
    taken |= hit
    grads.append(jnp.where(hit, grad_out, 0))
  return scatter(grads)


_max_of_views.defvjp(_max_of_views_forward, _max_of_views_backward)


def avg_pool(x, window, stride, padding=0, count_padding=True):
  """Mean over square windows; padded zeros count, as in Caffe and torchvision, or not
  (`count_padding=False`: TensorFlow's SAME pooling, PyTorch's count_include_pad=False)."""
  window_sum = lambda x: jax.lax.reduce_window(  # noqa: E731  (0.0: JAX sees a sum, and its grad)
      x, 0.0, jax.lax.add, (1, window, window, 1), (1, stride, stride, 1),
      ((0, 0), *_pads(x, window, stride, padding, False), (0, 0)))
  if count_padding:
    return window_sum(x) / (window * window)
  return window_sum(x) / window_sum(jnp.ones((1, *x.shape[1:3], 1), x.dtype))


class LRN(nn.Module):
  """Local response normalisation (Krizhevsky et al. 2012, Sec. 3.3); see `local_response_norm`."""
  size: int = 5
  k: float = 2.0
  alpha: float = 1e-4
  beta: float = 0.75

  def __call__(self, x):
    return local_response_norm(x, self.size, self.k, self.alpha, self.beta)


class MaxPool(nn.Module):
  """Square max pooling; `ceil_mode=True` is Caffe's rounding (GoogLeNet's 112/56/28/14/7 maps)."""
  window: int
  stride: int
  padding: int = 0
  ceil_mode: bool = False

  def __call__(self, x):
    return max_pool(x, self.window, self.stride, self.padding, self.ceil_mode)


class AvgPool(nn.Module):
  """Square average pooling; padded zeros count in the mean unless `count_padding=False`."""
  window: int
  stride: int
  padding: int = 0
  count_padding: bool = True

  def __call__(self, x):
    return avg_pool(x, self.window, self.stride, self.padding, self.count_padding)


class GlobalAvgPool(nn.Module):
  """Mean over the spatial axes: (N, H, W, C) -> (N, C)."""

  def __call__(self, x):
    return jnp.mean(x, axis=(1, 2))


def flatten(x):
  return x.reshape((x.shape[0], -1))


class ConvBNReLU(nn.Module):
  """Conv (no bias: BatchNorm's shift replaces it) → BatchNorm → ReLU, the unit of the BN-era nets.

  `conv` and `norm` are partials of `nn.Conv` / `nn.BatchNorm` that already carry dtype,
  initialiser and train/eval mode, so the networks set those in one place.
  """
  features: int
  kernel: tuple[int, int]
  conv: Callable[..., nn.Module]
  norm: Callable[..., nn.Module]
  strides: int = 1
  padding: str | int = 'SAME'

  @nn.compact
  def __call__(self, x):
    x = self.conv(self.features, self.kernel, self.strides, padding=self.padding,
                  use_bias=False, name='conv')(x)
    return nn.relu(self.norm(name='bn')(x))
