"""oneDNN's convolutions for XLA:CPU, through JAX's foreign function interface.

PyTorch convolves on CPUs with oneDNN's direct convolutions (JIT-compiled for the CPU's vector
extensions); XLA:CPU with Eigen's image patches and matrix products, 1.1-2× slower per layer on
an AVX-512 Zen 4 (docs/performance.md). `convolution` is lax's float32 NHWC/HWIO convolution
computed by oneDNN, forward and backward, when `available()`: setup.sh installs oneDNN (PyPI's
onednn-cpu-gomp) and builds onednn_conv.cc into the virtual environment with

    python -m cnn_arch.onednn_build

cnn_arch.cpu_conv uses it where `computes` says.
"""
import ctypes
import functools
import os
import sys
from pathlib import Path

import jax
import numpy as np

TARGET = 'cnn_zoo_onednn_convolution'
SOURCE = Path(__file__).with_name('onednn_conv.cc')
FORWARD, INPUT_GRADIENT, KERNEL_GRADIENT = 0, 1, 2


def library_path(prefix=sys.prefix):
  """Where onednn_build puts the handler: in the environment whose jaxlib and oneDNN it was built
  against."""
  return Path(prefix) / 'lib' / 'libcnn_zoo_onednn_conv.so'


@functools.cache
def available():
  """Whether the handler is built and loads (and registers it with JAX, once)."""
  if not library_path().exists():
    return False
  try:
    library = ctypes.cdll.LoadLibrary(str(library_path()))
  except OSError:  # oneDNN uninstalled since the build: XLA's convolutions
    return False
  jax.ffi.register_ffi_target(TARGET, jax.ffi.pycapsule(library.OneDnnConvolution),
                              platform='cpu')
  return True


# oneDNN's dnnl_cpu_isa_t: a bit mask, each level containing the ones below.
AVX512_CORE = 0x27


@functools.cache
def cpu_isa():
  """The instruction set oneDNN's kernels use on this CPU (a dnnl_cpu_isa_t), 0 if unknown."""
  if not available():
    return 0
  onednn = ctypes.cdll.LoadLibrary(str(library_path().with_name('libdnnl.so.3')))
  return onednn.dnnl_get_effective_cpu_isa()


def enabled():
  """Whether cpu_conv hands float32 convolutions to oneDNN: where its AVX-512 kernels run, which
  are faster than XLA's on every convolution of ResNet-18 on a Zen 4 (docs/performance.md;
  AVX2 CPUs keep XLA's, measured faster than PyTorch's there). CNN_ZOO_ONEDNN=1 uses oneDNN on
  any x86 CPU, =0 never."""
  choice = os.environ.get('CNN_ZOO_ONEDNN', '')
  if choice not in ('', '0', '1'):
    raise ValueError(f'CNN_ZOO_ONEDNN={choice}: use 1 (always), 0 (never) or leave it unset')
  if choice == '0' or not available():
    return False
  return choice == '1' or cpu_isa() & AVX512_CORE == AVX512_CORE


def computes(*dtypes):
  """Whether cpu_conv's convolution of these operand dtypes is oneDNN's: float32 on a single
  CPU device (a custom call would be computed whole on each device of a sharded step)."""
  return (all(np.dtype(d) == np.float32 for d in dtypes) and jax.default_backend() == 'cpu'
          and jax.device_count() == 1 and enabled())


def layer_of(eqn):
  """(input shape, kernel shape, strides, padding, groups, dtype) of a jaxpr equation that is a
  oneDNN forward convolution, else None: what cnn_train.cpu_kernels reads off lax's."""
  if eqn.primitive.name != 'ffi_call' or eqn.params['target_name'] != TARGET:
    return None
  attributes = {name: np.asarray(getattr(value, 'val', value))
                for name, value in eqn.params['attributes']}
  if attributes['kind'] != FORWARD:
    return None
  x, kernel = (v.aval for v in eqn.invars)
  pads = tuple(zip(attributes['pad_lo'].tolist(), attributes['pad_hi'].tolist()))
  return (x.shape, kernel.shape, tuple(attributes['strides'].tolist()), pads,
          int(attributes['groups']), np.dtype(x.dtype).name)


def _call(kind, a, b, out_shape, strides, pads, groups):
  pads = np.asarray(pads, np.int64).reshape(2, 2)
  return jax.ffi.ffi_call(TARGET, jax.ShapeDtypeStruct(out_shape, np.float32))(
      a, b, kind=np.int64(kind), strides=np.asarray(strides, np.int64), pad_lo=pads[:, 0],
      pad_hi=pads[:, 1], groups=np.int64(groups))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def convolution(x, kernel, strides, pads, groups):
  """lax.conv_general_dilated(x, kernel, strides, pads, dimension_numbers=NHWC/HWIO/NHWC,
  feature_group_count=groups) for float32, by oneDNN. `pads` is ((top, bottom), (left, right))."""
  out_shape = jax.lax.conv_general_shape_tuple(x.shape, kernel.shape, strides, pads,
                                               ('NHWC', 'HWIO', 'NHWC'))
  return _call(FORWARD, x, kernel, out_shape, strides, pads, groups)


def _forward(x, kernel, strides, pads, groups):
  return convolution(x, kernel, strides, pads, groups), (x, kernel)


def _backward(strides, pads, groups, saved, grad_out):
  x, kernel = saved
  return (_call(INPUT_GRADIENT, grad_out, kernel, x.shape, strides, pads, groups),
          _call(KERNEL_GRADIENT, x, grad_out, kernel.shape, strides, pads, groups))


convolution.defvjp(_forward, _backward)
