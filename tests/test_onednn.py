"""cnn_arch.onednn: oneDNN's convolutions compute lax's convolution, forward and backward."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnn_arch import cpu_conv, onednn, onednn_build

needs_onednn = pytest.mark.skipif(
    not onednn.available(), reason='oneDNN handler not built: python -m cnn_arch.onednn_build')


def test_the_handler_is_built_where_onednn_is_installed():
  """setup.sh installs oneDNN on x86-64 Linux and builds the handler: a failed build must not
  pass for a machine without oneDNN."""
  if not onednn.library_path().with_name('libdnnl.so.3').exists():
    pytest.skip('oneDNN is not installed in this environment')
  assert onednn.available(), 'python -m cnn_arch.onednn_build'


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


@pytest.fixture
def one_device(monkeypatch):
  """The tests run on two CPU devices; a user's CPU is one, where oneDNN's convolutions run."""
  monkeypatch.setattr(jax, 'device_count', lambda: 1)


def lowered_by_onednn(fn, *args):
  return onednn.TARGET in jax.jit(fn).lower(*args).as_text()


@needs_onednn
def test_cpu_conv_hands_float32_convolutions_to_onednn_when_enabled(one_device, monkeypatch):
  x, w = jnp.ones((2, 8, 8, 4)), jnp.ones((3, 3, 4, 6))

  def conv(x, w):  # a new function each time: the choice is made when it is traced
    return lambda x, w: cpu_conv.conv_general_dilated(x, w, (1, 1), 'SAME',
                                                      dimension_numbers=cpu_conv.NHWC)
  monkeypatch.setenv('CNN_ZOO_ONEDNN', '1')
  assert lowered_by_onednn(conv(x, w), x, w)
  assert not lowered_by_onednn(conv(x, w), x.astype(jnp.bfloat16), w.astype(jnp.bfloat16))
  monkeypatch.setenv('CNN_ZOO_ONEDNN', '0')
  assert not lowered_by_onednn(conv(x, w), x, w)
  monkeypatch.setenv('CNN_ZOO_ONEDNN', 'yes')
  with pytest.raises(ValueError, match='CNN_ZOO_ONEDNN=yes: use 1'):
    onednn.enabled()
  monkeypatch.delenv('CNN_ZOO_ONEDNN')
  assert onednn.enabled() == (onednn.cpu_isa() & onednn.AVX512_CORE == onednn.AVX512_CORE)


@needs_onednn
def test_resnet18_trains_the_same_by_onednn(one_device, monkeypatch):
  """A whole network: ResNet-18's loss and gradients are XLA's, to float32 rounding, and
  cnn_train.cpu_kernels reads its 20 convolutions off either step."""
  import cnn_arch
  from cnn_train import cpu_kernels
  model = cnn_arch.create_model('resnet18', 10)
  images = jax.random.normal(jax.random.key(0), (2, 128, 128, 3))
  variables = model.init(jax.random.key(1), images, train=False)

  def loss(params):
    logits, _ = model.apply({**variables, 'params': params}, images, train=True,
                            mutable=['batch_stats'])
    return jnp.mean(jax.nn.log_softmax(logits)[:, 3])
  results = {}
  for choice in ('0', '1'):
    monkeypatch.setenv('CNN_ZOO_ONEDNN', choice)
    step = jax.jit(jax.value_and_grad(lambda p: loss(p)))  # traced afresh for each choice
    assert lowered_by_onednn(step, variables['params']) == (choice == '1')
    results[choice] = step(variables['params'])
    layers = cpu_kernels.convolutions(model, jax.ShapeDtypeStruct(images.shape, images.dtype))
    assert sum(layers.values()) == 20  # 1 + 16 + 3 shortcuts, as He et al. count them
  (xla_loss, xla_grads), (our_loss, our_grads) = results['0'], results['1']
  np.testing.assert_allclose(our_loss, xla_loss, rtol=1e-5)
  for ours, want in zip(jax.tree.leaves(our_grads), jax.tree.leaves(xla_grads)):
    np.testing.assert_allclose(ours, want, rtol=1e-3, atol=1e-4 * float(jnp.max(jnp.abs(want))))


def test_building_without_onednn_says_what_to_install(tmp_path):
  with pytest.raises(SystemExit, match='pip install onednn-cpu-gomp'):
    onednn_build.build(prefix=tmp_path)
