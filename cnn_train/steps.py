"""The train state and the two jitted pure functions: train_step and eval_step."""
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax.training import train_state


class TrainState(train_state.TrainState):
  batch_stats: Any
  lr_scale: jax.Array  # the plateau schedule's factor, set on the host after each eval


def create_train_state(rng, model, tx, image_shape):
  """Initial state for images of `image_shape` (H, W, C); pure, so it can be jitted or traced.

  Parameters (and their momentum) keep the model's partitioning annotations as flax boxes:
  `sharding.state_shardings` reads them, `flax.linen.meta.unbox` removes them."""
  variables = model.init(rng, jnp.zeros((1, *image_shape), jnp.float32))
  return TrainState.create(apply_fn=model.apply, params=variables['params'], tx=tx,
                           batch_stats=variables.get('batch_stats', {}),
                           lr_scale=jnp.ones((), jnp.float32))


def cross_entropy(logits, labels, label_smoothing=0.0):
  targets = optax.smooth_labels(jax.nn.one_hot(labels, logits.shape[-1]), label_smoothing)
  return optax.softmax_cross_entropy(logits.astype(jnp.float32), targets)


def train_step(state, batch, *, schedule, dropout_key, images=lambda batch: batch['image'],
               aux_loss_weight=0.0, label_smoothing=0.0, skip_nonfinite=False):
  """One SGD step on the global batch; BatchNorm statistics are over the whole global batch.

  `images(batch)` makes the model's float input from the batch (augment.train_images: the
  float augmentation of uint8 images, per example).

  Metric `nonfinite` is 1 when the loss, the gradient or the new parameters hold a NaN or Inf
  (a gradient's NaN or Inf reaches its parameter through the update, so the parameters are
  checked for it); with `skip_nonfinite` such a step leaves parameters, statistics and momentum
  as they were (only the step count advances).
  """
  rng = jax.random.fold_in(dropout_key, state.step)  # dropout masks: a function of seed and step
  inputs = images(batch)

  def loss_fn(params):
    outputs, updates = state.apply_fn(
        {'params': params, 'batch_stats': state.batch_stats}, inputs, train=True,
        rngs={'dropout': rng}, mutable=['batch_stats'])
    logits, aux_logits = outputs if isinstance(outputs, tuple) else (outputs, ())
    loss = cross_entropy(logits, batch['label'], label_smoothing).mean()
    for aux in aux_logits:  # GoogLeNet's auxiliary classifiers: training only
      loss += aux_loss_weight * cross_entropy(aux, batch['label'], label_smoothing).mean()
    return loss, (logits, updates.get('batch_stats', {}))

  (loss, (logits, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  lr = schedule(state.step) * state.lr_scale
  state.opt_state.hyperparams['learning_rate'] = lr
  new_state = state.apply_gradients(grads=grads, batch_stats=batch_stats)
  # The gradient is not read (its NaN or Inf is in the parameters, as the docstring says):
  # reading it too cost VGG-16's step 6 % on a CPU.
  finite = all_finite((loss, new_state.params))
  if skip_nonfinite:
    new_state = jax.tree.map(lambda new, old: jnp.where(finite, new, old),
                             new_state, state.replace(step=new_state.step))
  metrics = {'train_loss': loss, 'lr': lr, 'nonfinite': 1 - finite.astype(jnp.int32),
             'train_top1': jnp.mean(jnp.argmax(logits, -1) == batch['label'])}
  return new_state, metrics


def all_finite(tree):
  """No NaN or Inf in `tree`. x - x is 0 for a finite x and NaN for ±Inf and NaN, so one fused
  subtract-and-sum per array finds them, reading x once: XLA:CPU leaves is-finite out of fusions
  (a pass that writes a bool array, then its reduce), 3-4x slower on AlexNet's 38M-weight layer;
  and in a train step it hands x * 0 to YNNPACK's reduce with the 0 written out as a whole
  array, 2.7x slower than x - x there (docs/performance.md)."""
  return jnp.isfinite(sum(jnp.sum(x - x, dtype=jnp.float32) for x in jax.tree.leaves(tree)))


def eval_step(state, batch, images=lambda batch: batch['image']):
  """Sums over the real (mask=True) examples of the batch: loss, top-1, top-5 hits, count.

  `images(batch)`: the model's float input (augment.eval_images: normalised uint8 images).
  Images of shape [B, K, H, W, C] are K crops of each example (AlexNet's 10-crop test): their
  softmax outputs are averaged.
  """
  inputs = images(batch)
  crops = inputs.shape[1] if inputs.ndim == 5 else 1
  logits = state.apply_fn({'params': state.params, 'batch_stats': state.batch_stats},
                          inputs.reshape((-1, *inputs.shape[-3:])), train=False)
  log_probs = jax.nn.log_softmax(logits.astype(jnp.float32))
  if crops > 1:  # log of the mean of the crops' probabilities
    log_probs = jax.nn.logsumexp(log_probs.reshape((-1, crops, log_probs.shape[-1])), axis=1)
    log_probs -= jnp.log(crops)
  return count_hits(log_probs, batch['label'], batch['mask'])


def count_hits(log_probs, labels, mask):
  """Masked sums of the loss and of the top-1 and top-5 hits of one batch of log-probabilities."""
  k = min(5, log_probs.shape[-1])
  top5 = jax.lax.top_k(log_probs, k)[1]
  mask = mask.astype(jnp.float32)
  loss = -jnp.take_along_axis(log_probs, labels[:, None], axis=-1)[:, 0]
  return {
      'loss': jnp.sum(loss * mask),
      'top1': jnp.sum((top5[:, 0] == labels) * mask),
      'top5': jnp.sum(jnp.any(top5 == labels[:, None], axis=-1) * mask),
      'count': jnp.sum(mask),
  }
