"""Every model runs: logits of the right shape, random in training (dropout), fixed in eval."""
import subprocess
import sys
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cnn_arch
from cnn_arch.alexnet import AlexNet
from cnn_arch.summary import summarize

ISSUE_NAMES = {
    'lenet5', 'alexnet', 'vgg_a', 'vgg_a_lrn', 'vgg_b', 'vgg_c', 'vgg_d', 'vgg_e', 'vgg_b_5x5',
    'vgg11', 'vgg13', 'vgg16', 'vgg19', 'nin', 'googlenet', 'inception_bn', 'inception_v3',
    'inception_v4', 'inception_resnet_v1', 'inception_resnet_v2', 'resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152',
    'resnet20', 'resnet32', 'resnet44', 'resnet56', 'resnet110', 'resnet1202'}
# One of each family and each structural option runs by default; deeper twins are `slow`.
DEFAULT = [('lenet5', {}), ('lenet5', {'activation': 'relu', 'pooling': 'max'}),
           ('alexnet', {}), ('alexnet', {'groups': 2, 'lrn': False}), ('vgg_a_lrn', {}),
           ('nin', {}), ('googlenet', {}), ('inception_bn', {}), ('inception_v3', {}),
           ('resnet18', {}), ('resnet50', {}), ('inception_v4', {}), ('resnet20', {})]
SLOW = [(n, {}) for n in ('vgg_a', 'vgg_b', 'vgg_c', 'vgg_d', 'vgg_e',
                          'resnet34', 'resnet101', 'resnet152', 'inception_resnet_v1',
                          'inception_resnet_v2')] + [
    ('vgg_a', {'batch_norm': True}), ('googlenet', {'aux': False}),
    ('resnet50', {'stride_in_3x3': True}), ('resnet18', {'residual': False}),
    ('resnet56', {}), ('resnet20', {'residual': False})]
CASES = DEFAULT + [pytest.param(*c, marks=pytest.mark.slow) for c in SLOW]


def test_list_models_covers_every_name():
  assert set(cnn_arch.list_models()) == ISSUE_NAMES


@pytest.mark.parametrize('name,overrides', CASES,
                         ids=lambda v: v if isinstance(v, str) else ','.join(map(str, v.items())))
def test_forward(name, overrides, random_variables):
  classes = 7
  model = cnn_arch.create_model(name, classes, **overrides)
  x = jax.random.normal(jax.random.key(0), (2, *cnn_arch.input_shape(name, **overrides)))
  variables = random_variables(model, x)
  evaluate = jax.jit(model.apply)
  evals = [evaluate(variables, x) for _ in range(2)]

  @jax.jit
  @partial(jax.vmap, in_axes=(None, None, 0))
  def train(variables, x, key):
    return model.apply(variables, x, train=True, rngs={'dropout': key},
                       mutable=['batch_stats'])[0]

  trains = train(variables, x, jax.random.split(jax.random.key(2)))
  assert evals[0].shape == (2, classes) and evals[0].dtype == jnp.float32
  assert bool(jnp.all(jnp.isfinite(evals[0])))
  np.testing.assert_array_equal(evals[0], evals[1])  # eval mode is deterministic
  with_aux = getattr(model, 'aux', False)
  if with_aux:  # training returns (logits, auxiliary logits) and eval only the logits
    trains, aux = trains
    assert [a.shape for a in aux] == [(2, 2, classes)] * (2 if name == 'googlenet' else 1)
  assert trains[0].shape == (2, classes)
  if any(layer['type'] == 'Dropout' for layer in summarize(name, **overrides)['layers']):
    assert not np.allclose(trains[0], trains[1])  # dropout: a new mask for a new key
  else:
    np.testing.assert_array_equal(trains[0], trains[1])


def test_auxiliary_heads_never_change_the_main_output(random_variables):
  x = jax.random.normal(jax.random.key(0), (2, 224, 224, 3))
  with_aux, without = (cnn_arch.create_model('googlenet', 5, aux=a) for a in (True, False))
  params = random_variables(with_aux, x)['params']
  main_params = {k: v for k, v in params.items() if not k.startswith('aux')}
  assert set(params) - set(main_params) == {'aux1', 'aux2'}

  @jax.jit
  def run(params, main_params, x):
    rngs = {'dropout': jax.random.key(2)}
    return (with_aux.apply({'params': params}, x, train=True, rngs=rngs),
            without.apply({'params': main_params}, x, train=True, rngs=rngs))

  (logits, aux), plain = run(params, main_params, x)
  assert len(aux) == 2
  np.testing.assert_allclose(logits, plain, rtol=1e-6)
  assert not np.allclose(aux[0], aux[1])


@pytest.mark.parametrize('name', ['lenet5', 'resnet18', 'alexnet'])
def test_bfloat16_compute_keeps_float32_params(name, random_variables):
  model = cnn_arch.create_model(name, 10, dtype=jnp.bfloat16)
  x = jnp.ones((2, *cnn_arch.input_shape(name)))
  shapes = jax.eval_shape(model.init, jax.random.key(0), x)
  assert {p.dtype for p in jax.tree.leaves(shapes)} == {jnp.dtype('float32')}
  logits = jax.jit(model.apply)(random_variables(model, x), x)
  assert logits.dtype == jnp.bfloat16 and bool(jnp.all(jnp.isfinite(logits)))


def test_unknown_model_and_option_are_named():
  with pytest.raises(ValueError, match='unknown model .resnet19.'):
    cnn_arch.create_model('resnet19')
  with pytest.raises(ValueError, match='unknown option.* towers.*accepts.*groups'):
    cnn_arch.create_model('alexnet', towers=2)


def test_smallest_input_size_and_registering_a_model():
  assert cnn_arch.smallest_input_size('alexnet') == 67  # conv1 15, pools 7 / 3 / 1
  assert cnn_arch.smallest_input_size('vgg_a') == 32    # five 2×2 pools
  with pytest.raises(ValueError, match="'alexnet' is already in the zoo"):
    cnn_arch.register('alexnet', AlexNet, (227, 227, 3))


@pytest.mark.parametrize('name,overrides,message', [
    ('alexnet', {'groups': 3}, 'groups=3'),
    ('lenet5', {'activation': 'swish'}, 'activation'),
    ('resnet18', {'stride_in_3x3': True}, 'bottleneck'),
    ('inception_v4', {'aux': True}, 'no auxiliary'),
])
def test_impossible_options_fail_with_a_message(name, overrides, message):
  with pytest.raises(ValueError, match=message):
    summarize(name, **overrides)


def test_lenet5_rejects_the_wrong_input_size():
  with pytest.raises(ValueError, match='takes 32×32'):
    summarize('lenet5', input_size=28, conv1_padding=0)


def test_importing_the_zoo_does_not_import_tensorflow():
  code = 'import sys, cnn_arch; print("tensorflow" in sys.modules)'
  out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
  assert out.stdout.strip() == 'False'
