"""`Conv`: Flax's convolution, the same function, faster on CPUs: oneDNN's where
cnn_arch.onednn says it computes it (AVX-512 CPUs), else XLA's with a kernel gradient (and, for
maps smaller than the kernel, a forward) of our own, and for strided ones the input gradient that
cnn_train.cpu_kernels measured faster on this CPU. GPUs, dilations and other layouts get XLA's.
"""
import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from cnn_arch import onednn

NHWC = ('NHWC', 'HWIO', 'NHWC')


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None,
                         rhs_dilation=None, dimension_numbers=None, feature_group_count=1,
                         **kwargs):
  """lax.conv_general_dilated, the same function: by oneDNN (`onednn.computes`), or with a
  kernel gradient that is faster on CPUs (see `kernel_gradient_method`) and a matmul for maps
  smaller than the kernel. GPUs, dilations and other layouts keep XLA's own."""
  args = dict(lhs_dilation=lhs_dilation, rhs_dilation=rhs_dilation,
              dimension_numbers=dimension_numbers, feature_group_count=feature_group_count,
              **kwargs)
  nhwc = lax.conv_dimension_numbers(lhs.shape, rhs.shape, NHWC)
  if (jax.default_backend() != 'cpu' or lhs.ndim != 4 or kwargs.get('precision')
      or any(d != 1 for d in (*(lhs_dilation or ()), *(rhs_dilation or ())))
      or lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers) != nhwc):
    return lax.conv_general_dilated(lhs, rhs, window_strides, padding, **args)
  if isinstance(padding, str):
    padding = lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], window_strides, padding)
  strides, pads = tuple(window_strides), tuple(map(tuple, padding))
  if onednn.computes(lhs.dtype, rhs.dtype):
    return onednn.convolution(lhs, rhs, strides, pads, feature_group_count)
  out_shape = lax.conv_general_shape_tuple(lhs.shape, rhs.shape, window_strides, padding, NHWC)
  if feature_group_count == 1 and any(n < k for n, k in zip(lhs.shape[1:3], rhs.shape[:2])):
    # A map smaller than the kernel (VGG's conv5 at 2×2 for a 32×32 input): XLA:CPU convolves
    # it 70× slower than it multiplies the patches by the kernel.
    return _conv_of_patches(lhs, rhs, strides, pads, out_shape[1:3])
  if (kernel_gradient_method(lhs.shape, rhs.shape, out_shape, strides, feature_group_count)
      == 'xla' and _input_gradient_method(lhs, rhs, strides, pads, feature_group_count) == 'xla'):
    return lax.conv_general_dilated(lhs, rhs, window_strides, padding, **args)
  return _conv(lhs, rhs, strides, pads, feature_group_count)


def _lax_conv(x, kernel, strides, pads, groups):
  return lax.conv_general_dilated(x, kernel, strides, pads, dimension_numbers=NHWC,
                                  feature_group_count=groups)


_conv = jax.custom_vjp(_lax_conv, nondiff_argnums=(2, 3, 4))


def _conv_forward(x, kernel, strides, pads, groups):
  return _lax_conv(x, kernel, strides, pads, groups), (x, kernel)


def _conv_backward(strides, pads, groups, saved, grad_out):
  x, kernel = saved
  _, xla_vjp = jax.vjp(lambda x, kernel: _lax_conv(x, kernel, strides, pads, groups), x, kernel)
  if _input_gradient_method(x, kernel, strides, pads, groups) == 'phases':
    input_grad = _input_gradient_of_phases(grad_out, kernel, x.shape, strides, pads)
  else:  # XLA's own: as fast as the forward, but for some strided convolutions
    input_grad = xla_vjp(grad_out)[0]
  method = kernel_gradient_method(x.shape, kernel.shape, grad_out.shape, strides, groups)
  if method == 'xla':
    return input_grad, xla_vjp(grad_out)[1]
  gradient = _kernel_gradient_of_patches if method == 'patches' else _kernel_gradient_swapped
  return input_grad, gradient(x, grad_out, kernel.shape, strides, pads,
                              groups).astype(kernel.dtype)


def _input_gradient_method(x, kernel, strides, pads, groups):
  return INPUT_GRADIENTS.get(input_gradient_key(x, kernel, strides, pads, groups), 'xla')


# How the input gradient of a strided convolution is computed, by `input_gradient_key`: 'phases'
# (`_input_gradient_of_phases`) or, where missing, XLA's. Which is faster depends on the CPU and
# the shape (on a Zen 3 EPYC, 2.7× faster for ResNet-18's first strided 3×3, 1.3× slower for
# the 1×1 beside it), so cnn_train.cpu_kernels measures it before a train step is traced.
INPUT_GRADIENTS = {}


def input_gradient_key(x, kernel, strides, pads, groups):
  """'32x56x56x64 3x3x64x128 s2x2 p1,1,1,1 float32' for a strided convolution that has a
  choice of input gradient (groups of 1); None for the others."""
  if groups != 1 or max(strides) == 1 or any(
      n < k for n, k in zip(x.shape[1:3], kernel.shape[:2])):  # (small maps: `_conv_of_patches`)
    return None
  dims = lambda shape: 'x'.join(map(str, shape))
  return (f'{dims(x.shape)} {dims(kernel.shape)} s{dims(strides)} '
          f'p{",".join(str(p) for pair in pads for p in pair)} {jnp.dtype(x.dtype).name}')


def _input_gradient_of_phases(grad_out, kernel, x_shape, strides, pads):
  """d loss / d x of a strided convolution as one stride-1 convolution per s×s phase of the
  padded input. Phase (a, b) gets the kernel taps (s·j + a, s·k + b): its gradient at (m, n)
  is Σ grad_out[m - j, n - k] · kernel[s·j + a, s·k + b]. XLA's own convolves grad_out dilated
  by zeros, which multiplies s² times as many pixels."""
  n, h, w, cin = x_shape
  (sh, sw), (ho, wo) = strides, grad_out.shape[1:3]
  rows, cols = (-(-(size + p[0] + p[1]) // s) for size, p, s in zip((h, w), pads, strides))
  phases = []
  for a in range(sh):
    for b in range(sw):
      taps = kernel[a::sh, b::sw]
      if 0 in taps.shape[:2]:  # a kernel smaller than the stride: no tap reads this phase
        phases.append(jnp.zeros((n, rows, cols, cin), grad_out.dtype))
        continue
      (ka, kb), taps = taps.shape[:2], jnp.flip(taps, (0, 1)).swapaxes(2, 3)
      phase = lax.conv_general_dilated(
          grad_out, taps, (1, 1), [(ka - 1, max(0, rows - ho)), (kb - 1, max(0, cols - wo))],
          dimension_numbers=NHWC)
      phases.append(phase[:, :rows, :cols])
  dx = jnp.stack(phases, 3).reshape(n, rows, cols, sh, sw, cin)
  dx = dx.transpose(0, 1, 3, 2, 4, 5).reshape(n, rows * sh, cols * sw, cin)
  return dx[:, pads[0][0]:pads[0][0] + h, pads[1][0]:pads[1][0] + w]


def kernel_gradient_method(x_shape, kernel_shape, out_shape, strides, groups):
  """How the kernel gradient is computed on a CPU, measured on this project's networks.

  - 'patches' for grouped and 1×1 kernels: one matmul of image patches; XLA:CPU's own is 3.4×
    slower for AlexNet's two-tower conv2, 1.2× for a 1×1 kernel.
  - 'swapped' for the others: a convolution of the output gradient by the input (XLA's own
    convolves the input by the output gradient), 7% off ResNet-18's step; see
    `_kernel_gradient_swapped`.
  - 'xla' where XLA would swap the roles back (an input whose phases outsize the output, as
    with VALID padding), or where the input is far smaller than the output gradient (a
    network's first layer: its image is cheap to transpose, and the output gradient, which no
    input gradient needs, is not in memory).
  """
  if groups > 1 or tuple(kernel_shape[:2]) == (1, 1):
    return 'patches'
  phases = [-(-size // s) for size, s in zip(x_shape[1:3], strides)]
  outsized = any(p > o for p, o in zip(phases, out_shape[1:3]))
  if outsized or 4 * math.prod(x_shape) <= math.prod(out_shape):
    return 'xla'
  return 'swapped'


def _patches(x, kernel_hw, strides, pads, out_hw):
  """The window of the padded x under each output pixel, tap by tap: [N, Ho, Wo, kh·kw, C]."""
  (sh, sw), (ho, wo) = strides, out_hw
  x = jnp.pad(x, ((0, 0), *pads, (0, 0)))
  return jnp.stack([x[:, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw]
                    for i in range(kernel_hw[0]) for j in range(kernel_hw[1])], axis=3)


def _conv_of_patches(x, kernel, strides, pads, out_hw):
  """The convolution as one matrix product of the patches and the kernel (groups of 1)."""
  patches = _patches(x, kernel.shape[:2], strides, pads, out_hw)
  out = patches.reshape(-1, patches.shape[3] * patches.shape[4]) @ kernel.reshape(
      -1, kernel.shape[-1])
  return out.reshape(*patches.shape[:3], kernel.shape[-1])


def _accumulator(dtype):
  """Sums over images and pixels in float32 at least (bfloat16 runs), float64 for float64."""
  return jnp.promote_types(dtype, jnp.float32)


def _kernel_gradient_of_patches(x, grad_out, kernel_shape, strides, pads, groups):
  """d loss / d kernel = Σ over images and output pixels of (input patch) ⊗ (output gradient)."""
  kh, kw, cg, out = kernel_shape
  n, ho, wo, _ = grad_out.shape
  patches = _patches(x, (kh, kw), strides, pads, (ho, wo))
  accumulate = _accumulator(x.dtype)
  # Images and pixels flattened into one contraction axis: XLA:CPU's dot is fastest so.
  rows = n * ho * wo
  if groups == 1:  # a plain matrix product: with a unit group axis, XLA:CPU first transposes
    # grad_out, which can cost as much as the product
    return jnp.einsum('rk,ro->ko', patches.reshape(rows, -1), grad_out.reshape(rows, out),
                      preferred_element_type=accumulate).reshape(kernel_shape)
  patches = patches.reshape(rows, kh * kw, groups, cg)
  grad_out = grad_out.reshape(rows, groups, out // groups)
  return jnp.einsum('rkgc,rgo->kcgo', patches, grad_out,
                    preferred_element_type=accumulate).reshape(kernel_shape)


def _kernel_gradient_swapped(x, grad_out, kernel_shape, strides, pads, groups):
  """d loss / d kernel as a convolution whose image is grad_out and whose kernel is x.

  XLA's own makes x the image, which XLA:CPU lays out as (C, H, W, N): a transpose that XLA
  fuses with the recomputation of the layers that made x (BatchNorm, ReLU, residual sums),
  and a fused transpose runs at a fraction of a copy's speed. Here x is laid out as
  (H, W, N, C), whole channel rows at a time, and it is grad_out, kept in memory for the input
  gradient, that is transposed. A stride s is undone by splitting x into its s×s phases,
  stacked on the channel axis, so that the convolution has stride 1.
  """
  del groups  # always 1 here
  n, h, w, cin = x.shape
  (sh, sw), (ho, wo) = strides, grad_out.shape[1:3]
  rows, cols = -(-h // sh), -(-w // sw)  # of each phase
  x = jnp.pad(x, ((0, 0), (0, sh * rows - h), (0, sw * cols - w), (0, 0)))
  phases = x.reshape(n, rows, sh, cols, sw, cin).transpose(1, 3, 0, 2, 4, 5)
  # Kernel tap i reads phase a = (i - pad) % s shifted by q = (i - pad) // s; the
  # convolution's output position t = max(q) - q.
  (qh, ah), (qw, aw) = (divmod(np.arange(k) - p[0], s)
                        for k, p, s in zip(kernel_shape, pads, strides))
  padding = [(q.max(), size - out - q.min()) for q, size, out in ((qh, rows, ho), (qw, cols, wo))]
  out = lax.conv_general_dilated(
      grad_out, phases.reshape(rows, cols, n, sh * sw * cin), (1, 1), padding,
      dimension_numbers=('CHWN', 'HWIO', 'HWCN'), preferred_element_type=_accumulator(x.dtype))
  out = out.reshape(*out.shape[:2], sh, sw, cin, -1)
  return out[(qh.max() - qh)[:, None], (qw.max() - qw)[None], ah[:, None], aw[None]]


_conv.defvjp(_conv_forward, _conv_backward)
# nn.Conv (same parameters, same outputs) with the CPU-friendly kernel gradient.
Conv = functools.partial(nn.Conv, conv_general_dilated=conv_general_dilated)
