"""The CPU kernels of a train step, chosen by measuring them on this CPU before it is traced.

A strided convolution's input gradient has two forms that compute the same numbers (see
`cnn_arch.cpu_conv`): XLA's own, a convolution of the zero-dilated output gradient, and one
stride-1 convolution per s×s phase of the input. Which is faster depends on the CPU and on the
shape: on a Zen 3 EPYC the phases take ResNet-18's 56×56×64 → 128 layer from 71 to 26 ms and
its 1×1 shortcut beside it from 9 to 12 ms. So each one is timed here, once per CPU, jaxlib and
shape, and the choice cached in $XDG_CACHE_HOME/cnn-zoo-jax/cpu_kernels.json (~/.cache by
default); ResNet-18's six take about 5 s on 2 cores.
"""
import time
from collections import Counter
from importlib import metadata

import jax
import jax.extend
import jax.numpy as jnp
from jax import lax

from cnn_arch import cpu_conv, onednn
from cnn_train import runtime, user_cache

# 'phases' must beat XLA's by this much: the two are often even, and a timing on a busy CPU
# moves by 10 %.
MARGIN = 0.9


def cache_path():
  return user_cache.path('cpu_kernels.json')


def machine_key():
  """The CPU (model, count, vector features) and the jaxlib whose kernels were timed."""
  return f'{runtime.cpu_description()}; jaxlib {metadata.version("jaxlib")}'


def convolutions(model, images):
  """Counter of (input shape NHWC, kernel HWIO, strides, padding, groups, dtype) over the
  model's forward pass on `images` (a shape and dtype), first layer first, lax's convolutions
  and oneDNN's alike."""
  jaxpr = jax.make_jaxpr(lambda x: model.init(jax.random.key(0), x))(images)
  found = Counter()

  def visit(jaxpr):
    for eqn in jaxpr.eqns:
      if layer := onednn.layer_of(eqn):
        found[layer] += 1
      elif eqn.primitive.name == 'conv_general_dilated':
        lhs, rhs = (v.aval for v in eqn.invars)
        p = eqn.params
        found[(lhs.shape, rhs.shape, tuple(p['window_strides']),
               tuple(map(tuple, p['padding'])), p['feature_group_count'],
               jnp.dtype(lhs.dtype).name)] += 1
      for sub in jax.extend.core.jaxprs_in_params(eqn.params):
        visit(sub)
  visit(jaxpr.jaxpr)
  return found


def input_gradient_ms(x_shape, kernel_shape, strides, pads, dtype, repeats=3):
  """{'xla': ms, 'phases': ms}: the input gradient of one convolution both ways, alternating,
  best of `repeats`."""
  def xla(grad_out, kernel):
    conv = lambda x: lax.conv_general_dilated(x, kernel, strides, pads,
                                              dimension_numbers=cpu_conv.NHWC)
    return jax.vjp(conv, jnp.zeros(x_shape, dtype))[1](grad_out)[0]

  def phases(grad_out, kernel):
    return cpu_conv._input_gradient_of_phases(grad_out, kernel, x_shape, strides, pads)
  out_shape = lax.conv_general_shape_tuple(x_shape, kernel_shape, strides, pads, cpu_conv.NHWC)
  grad_out = jax.random.normal(jax.random.key(0), out_shape, dtype)
  kernel = jax.random.normal(jax.random.key(1), kernel_shape, dtype)
  forms = {'xla': jax.jit(xla), 'phases': jax.jit(phases)}
  times = {name: [] for name in forms}
  for name, form in forms.items():
    form(grad_out, kernel).block_until_ready()  # compile, allocate
  for _ in range(repeats):
    for name, form in forms.items():
      start = time.perf_counter()
      form(grad_out, kernel).block_until_ready()
      times[name].append(1e3 * (time.perf_counter() - start))
  return {name: min(t) for name, t in times.items()}


def choose_input_gradients(model, images):
  """Fill cpu_conv.INPUT_GRADIENTS for the model's strided convolutions on `images` (the
  train step's global batch, shape and dtype): from the cache, else measured and cached.
  Returns a line for the user when it measured, else None.

  Only on a CPU backend, and not in multi-process runs, where every process must trace the same
  step (each keeps XLA's)."""
  if jax.default_backend() != 'cpu' or jax.process_count() > 1:
    return None
  layers = convolutions(model, images)
  keys = {}
  for x, kernel, strides, pads, groups, dtype in layers:
    key = cpu_conv.input_gradient_key(jax.ShapeDtypeStruct(x, dtype),
                                      jax.ShapeDtypeStruct(kernel, dtype), strides, pads, groups)
    # The image's gradient is never computed; oneDNN's convolutions have no choice.
    if key and x != images.shape and not onednn.computes(dtype):
      keys[key] = (x, kernel, strides, pads, dtype)
  cache = user_cache.read_json(cache_path())
  known = cache.setdefault(machine_key(), {})
  missing = [key for key in keys if key not in known]
  start = time.perf_counter()
  for key in missing:
    ms = input_gradient_ms(*keys[key])
    known[key] = 'phases' if ms['phases'] < MARGIN * ms['xla'] else 'xla'
  cpu_conv.INPUT_GRADIENTS.update({key: known[key] for key in keys})
  if not missing:
    return None
  by_phase = sum(known[key] == 'phases' for key in missing)
  line = (f'timed the input gradients of {len(missing)} strided convolution(s) on this CPU in '
          f'{time.perf_counter() - start:.1f} s: {by_phase} faster by phases')
  try:
    user_cache.write_json(cache_path(), cache, indent=1, sort_keys=True)
  except OSError as e:
    return f'{line}; cannot keep them in {cache_path()} ({e.strerror}): every start times them'
  return f'{line} (cached in {cache_path()})'
