"""Optimiser and learning-rate schedules, all optax.

The step-dependent schedules (`step`, `cosine`, `constant`) are optax schedules evaluated inside
the jitted train step. `plateau` depends on validation results, which exist only on the host
after an eval: optax's `reduce_on_plateau` runs there, and its scale multiplies the base rate.
"""
import functools
import math

import jax
import jax.numpy as jnp
import optax
from flax import traverse_util

SCHEDULES = ('plateau', 'step', 'cosine', 'constant')


def base_learning_rate(config):
  """config.lr, linearly scaled with the batch size when config.lr_reference_batch > 0."""
  if config.lr_reference_batch > 0:
    return config.lr * config.batch_size / config.lr_reference_batch
  return config.lr


def create_schedule(config, steps_per_epoch, total_steps):
  """An optax schedule (step → lr) for everything but the plateau's validation-driven factor."""
  lr, s = base_learning_rate(config), config.schedule
  if s.name == 'cosine':
    warmup = int(s.warmup_epochs * steps_per_epoch)
    return optax.warmup_cosine_decay_schedule(0.0, lr, warmup, max(total_steps, warmup + 1))
  if s.name == 'step':
    steps = s.decay_steps or [int(e * steps_per_epoch) for e in s.decay_epochs]
    boundaries = {step: s.factor for step in steps}
  elif s.name in ('plateau', 'constant'):
    boundaries = {}
  else:
    raise ValueError(f'schedule.name={s.name!r}: choose one of {", ".join(SCHEDULES)}')
  if s.warmup_steps:  # ResNet-110 on CIFAR: 0.01 until the training error is below 80 %
    lr *= s.warmup_factor
    boundaries[s.warmup_steps] = boundaries.get(s.warmup_steps, 1.0) / s.warmup_factor
  return optax.piecewise_constant_schedule(lr, boundaries)


def create_optimizer(config):
  """SGD with momentum, weight decay added to the gradient (inside the momentum, as AlexNet).

  The learning rate is an injected hyperparameter, set by the train step every step.
  """
  def decay_mask(params):
    flat = traverse_util.flatten_dict(params)
    return traverse_util.unflatten_dict(
        {k: config.optimizer.decay_all_params or k[-1] == 'kernel' for k in flat})

  def sgd(learning_rate):
    return optax.chain(
        optax.add_decayed_weights(config.optimizer.weight_decay, mask=decay_mask),
        optax.sgd(learning_rate, momentum=config.optimizer.momentum,
                  nesterov=config.optimizer.nesterov))

  return optax.inject_hyperparams(sgd)(learning_rate=base_learning_rate(config))


# --- plateau: optax.contrib.reduce_on_plateau, driven on the host after each eval ---
def _plateau(config):
  s = config.schedule
  return _reduce_on_plateau(s.factor, s.patience, s.min_delta, s.max_reductions)


@functools.lru_cache
def _reduce_on_plateau(factor, patience, min_delta, max_reductions):
  """(init, jitted update) of optax's rule; jitted once, or every eval would compile its cond."""
  rule = optax.contrib.reduce_on_plateau(
      # optax wants a positive tolerance; 1e-12 means "any decrease" in float32.
      factor=factor, patience=patience, rtol=0.0, atol=max(min_delta, 1e-12),
      min_scale=factor ** max_reductions)  # at most max_reductions reductions
  return rule.init, jax.jit(lambda state, value: rule.update(updates={}, state=state,
                                                              value=value)[1])


def plateau_init(config):
  return _plateau(config)[0](None)


def plateau_update(config, state, value):
  """The plateau state after one eval whose monitored metric (lower is better) is `value`."""
  state = _plateau(config)[1](state, jnp.asarray(value, jnp.float32))
  return jax.device_get(state)  # host values: nothing the donated train state can alias


def plateau_reductions(config, state):
  """How many times the plateau schedule has cut the learning rate."""
  return round(math.log(float(state.scale)) / math.log(config.schedule.factor))


def plateau_to_json(state):
  return {k: float(v) if jnp.issubdtype(jnp.asarray(v).dtype, jnp.floating) else int(v)
          for k, v in state._asdict().items()}


def plateau_from_json(config, data):
  template = plateau_init(config)
  return template._replace(**{k: jnp.asarray(data[k], jnp.asarray(v).dtype)
                              for k, v in template._asdict().items()})


