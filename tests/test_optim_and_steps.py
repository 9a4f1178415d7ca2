"""Schedules, the plateau rule, and the train step on one and on two devices."""
from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cnn_train import optim, sharding, steps
from configs import alexnet, common


def plateau_config(patience=2, max_reductions=3, min_delta=0.01):
  c = common.base()
  c.schedule.update(name='plateau', factor=0.1, patience=patience,
                    max_reductions=max_reductions, min_delta=min_delta)
  return c


def run_plateau(config, values):
  state, scales = optim.plateau_init(config), []
  for v in values:
    state = optim.plateau_update(config, state, v)
    scales.append(float(state.scale))
  return state, scales


def test_plateau_reduces_after_patience_evals_without_improvement():
  config = plateau_config(patience=2, min_delta=0.01)
  # 0.5 → 0.4 improves; 0.395 is within min_delta: no improvement; second one triggers.
  _, scales = run_plateau(config, [0.5, 0.4, 0.395, 0.395, 0.3, 0.3])
  np.testing.assert_allclose(scales, [1, 1, 1, 0.1, 0.1, 0.1], rtol=1e-6)


def test_plateau_stops_after_max_reductions():
  config = plateau_config(patience=1)
  state, scales = run_plateau(config, [0.5] * 10)
  assert optim.plateau_reductions(config, state) == 3
  np.testing.assert_allclose(scales, [1, 0.1, 0.01, 0.001, 0.001, 0.001, 0.001, 0.001, 0.001,
                                      0.001], rtol=1e-6)


def test_plateau_state_survives_json():
  config = plateau_config(patience=3)
  state, _ = run_plateau(config, [0.5, 0.6, 0.7])
  restored = optim.plateau_from_json(config, optim.plateau_to_json(state))
  after = optim.plateau_update(config, restored, 0.8)
  direct = optim.plateau_update(config, state, 0.8)
  assert float(after.scale) == float(direct.scale) == pytest.approx(0.1)
  assert int(after.plateau_count) == int(direct.plateau_count)


@pytest.mark.parametrize('name,expected', [
    ('constant', [0.1, 0.1, 0.1]),
    ('step', [0.1, 0.01, 0.001]),     # decay at epochs 1 and 2, 10 steps per epoch
])
def test_schedules(name, expected):
  c = common.base()
  c.lr = 0.1
  c.schedule.update(name=name, decay_epochs=(1, 2), factor=0.1)
  schedule = optim.create_schedule(c, steps_per_epoch=10, total_steps=30)
  np.testing.assert_allclose([schedule(s) for s in (5, 15, 25)], expected, rtol=1e-6)


@pytest.mark.parametrize('name', ['plateau', 'constant', 'step'])
def test_warmup_steps_hold_lr_times_factor_for_every_schedule_that_takes_them(name):
  c = common.base()
  c.lr = 0.01
  c.schedule.update(name=name, decay_epochs=(100,), warmup_steps=50, warmup_factor=0.1)
  schedule = optim.create_schedule(c, steps_per_epoch=10, total_steps=200)
  np.testing.assert_allclose([schedule(s) for s in (0, 49, 50, 199)],
                             [0.001, 0.001, 0.01, 0.01], rtol=1e-6)


def test_cosine_warms_up_then_decays_to_zero():
  c = common.base()
  c.lr = 0.2
  c.schedule.update(name='cosine', warmup_epochs=1)
  schedule = optim.create_schedule(c, steps_per_epoch=10, total_steps=100)
  assert float(schedule(0)) == 0 and float(schedule(10)) == pytest.approx(0.2)
  assert float(schedule(55)) == pytest.approx(0.1, rel=1e-2) and float(schedule(100)) < 1e-6


def test_linear_lr_scaling():
  c = alexnet.get_config()
  c.batch_size, c.lr_reference_batch = 512, 128
  assert optim.base_learning_rate(c) == pytest.approx(0.04)


def test_weight_decay_only_on_kernels_by_default():
  c = common.base()
  c.optimizer.update(weight_decay=0.5, momentum=0.0)
  params = {'conv': {'kernel': jnp.ones(3), 'bias': jnp.ones(3)}}
  zeros = jax.tree.map(jnp.zeros_like, params)
  tx = optim.create_optimizer(c)
  updates, _ = tx.update(zeros, tx.init(params), params)
  np.testing.assert_allclose(updates['conv']['kernel'], -0.01 * 0.5)
  np.testing.assert_allclose(updates['conv']['bias'], 0.0)
  c.optimizer.decay_all_params = True
  tx = optim.create_optimizer(c)
  updates, _ = tx.update(zeros, tx.init(params), params)
  np.testing.assert_allclose(updates['conv']['bias'], -0.01 * 0.5)


class TinyNet(nn.Module):
  """BatchNorm (statistics must be over the global batch) and dropout (keys from the step)."""

  @nn.compact
  def __call__(self, x, train=False):
    x = nn.Conv(8, (3, 3))(x)
    x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(x))
    x = nn.Dropout(0.3, deterministic=not train)(x.mean(axis=(1, 2)))
    return nn.Dense(5)(x)


def train_on(devices, batches):
  mesh = sharding.create_mesh(devices)
  config = common.base()
  config.lr = 0.1
  tx = optim.create_optimizer(config)
  init = partial(steps.create_train_state, model=TinyNet(), tx=tx, image_shape=(8, 8, 3))
  state_sharding = jax.tree.map(lambda _: sharding.replicated(mesh),
                                jax.eval_shape(init, jax.random.key(0)))
  state = jax.jit(init, out_shardings=state_sharding)(jax.random.key(0))
  step = jax.jit(partial(steps.train_step, schedule=optax.constant_schedule(0.1),
                         dropout_key=jax.random.key(1)),
                 in_shardings=(state_sharding, sharding.batch_sharding(mesh)),
                 out_shardings=(state_sharding, sharding.replicated(mesh)), donate_argnums=0)
  losses = []
  for batch in batches:
    state, metrics = step(state, sharding.to_global(batch, mesh))
    losses.append(float(metrics['train_loss']))
  return jax.device_get(state), losses


class InfiniteSlope(nn.Module):
  """A finite loss whose gradient is infinite: sqrt's slope at 0."""

  @nn.compact
  def __call__(self, x, train=False):
    w = self.param('w', nn.initializers.zeros, (5,))
    return jnp.sqrt(w) + 0 * x.mean()


@pytest.mark.parametrize('lr', [0.1, 0.0])
def test_an_infinite_gradient_under_a_finite_loss_is_nonfinite(lr):
  config = common.base()
  state = steps.create_train_state(jax.random.key(0), InfiniteSlope(),
                                   optim.create_optimizer(config), (4, 4, 3))
  batch = {'image': jnp.zeros((2, 4, 4, 3)), 'label': jnp.array([0, 1])}
  step = jax.jit(partial(steps.train_step, schedule=optax.constant_schedule(lr),
                         dropout_key=jax.random.key(1), skip_nonfinite=True))
  new_state, metrics = step(state, batch)
  assert np.isfinite(float(metrics['train_loss'])) and int(metrics['nonfinite']) == 1
  np.testing.assert_array_equal(new_state.params['w'], state.params['w'])  # skipped


def test_one_and_two_devices_give_the_same_training():
  assert jax.device_count() >= 2, 'conftest forces two CPU devices'
  rng = np.random.default_rng(0)
  batches = [{'image': rng.normal(size=(8, 8, 8, 3)).astype(np.float32),
              'label': rng.integers(0, 5, 8).astype(np.int32)} for _ in range(4)]
  one, losses_one = train_on(jax.devices()[:1], batches)
  two, losses_two = train_on(jax.devices()[:2], batches)
  np.testing.assert_allclose(losses_one, losses_two, rtol=1e-5)
  jax.tree.map(partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-6),
               (one.params, one.batch_stats), (two.params, two.batch_stats))
  assert losses_one[-1] != losses_one[0] and int(two.step) == 4


def test_batch_that_does_not_divide_is_an_error():
  mesh = sharding.create_mesh(jax.devices()[:2])
  with pytest.raises(ValueError, match='batch_size=7 does not divide over 2 devices'):
    sharding.check_batch_size(7, mesh)


def test_eval_counts_ignore_padding():
  logits = jax.nn.log_softmax(jnp.array([[0.0, 5.0, 1.0], [3.0, 0.0, 1.0], [9.0, 0.0, 0.0]]))
  hits = steps.count_hits(logits, jnp.array([1, 2, 1]), jnp.array([True, True, False]))
  assert float(hits['count']) == 2 and float(hits['top1']) == 1 and float(hits['top5']) == 2


@pytest.mark.parametrize('leaf,bad', [(None, None), ('w', np.nan), ('w', np.inf),
                                      ('w', -np.inf), ('b', np.nan), ('b', -np.inf),
                                      ('loss', np.inf), ('kernel', np.nan), ('kernel', np.inf)])
def test_all_finite_finds_every_nan_and_inf(leaf, bad):
  tree = {'loss': np.float32(2.5),
          'w': np.random.default_rng(0).normal(0, 1e30, (300, 70)).astype(np.float32),  # huge
          'b': np.ones(3, jnp.bfloat16),
          'kernel': np.ones((1024, 1024), np.float32)}  # a layer's size: XLA:CPU's library reduce
  if leaf:
    tree[leaf] = np.array(tree[leaf])
    tree[leaf].flat[tree[leaf].size // 2] = bad
  expected = all(np.isfinite(np.asarray(x, np.float32)).all() for x in tree.values())
  assert bool(jax.jit(steps.all_finite)(tree)) == expected == (leaf is None)
