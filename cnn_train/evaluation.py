"""Evaluate a run's checkpoint: every example of a split exactly once, 1 or 10 crops per image."""
import json
import os
import sys
import time

import jax
import jax.numpy as jnp

from cnn_train import checkpoints, input_pipeline, runs, sharding, sources, train_state

EVAL_BATCHES_PER_STOP_CHECK = 16  # in a multi-process run; every batch in a single process


def evaluate_checkpoint(workdir, checkpoint='latest', crops=1, split=None, devices=None):
  """Evaluate a checkpoint of the run in `workdir`; writes and returns the result."""
  config = runs.load_config(workdir)
  split = split or config.eval_split
  mesh = sharding.create_mesh(devices, config.model_axis)
  sharding.check_batch_size(config.batch_size, mesh)
  info = sources.dataset_info(config)
  _, abstract_state = train_state.train_state_of(config, info, mesh)
  manager = checkpoints.create_manager(workdir, config, read_only=True)
  step = runs.choose_step(manager, workdir, checkpoint)
  try:
    state, _ = checkpoints.restore(manager, abstract_state, step)
  except Exception as e:  # orbax and tensorstore raise ValueError, OSError, KeyError...
    raise ValueError(f'checkpoint {step} in {workdir} does not fit {config.model.name} as its '
                     f'config.json describes it ({type(e).__name__}): is it damaged, or copied '
                     f'from another run? Kept steps: {", ".join(map(str, manager.all_steps()))}'
                     ) from e
  if crops == 10 and config.augment.crop == 'none' and jax.process_index() == 0:
    print(f"warning: {workdir} was trained without crops (augment.crop='none'): its ten crops "
          'are shifted views of a kind it never saw, so they may score below --crops=1; '
          'evaluating them all the same', file=sys.stderr, flush=True)
  _, eval_step = train_state.jitted_steps(config, abstract_state, mesh)
  start = time.time()
  metrics = evaluate(eval_step, state, config, mesh, split, crops)
  seconds = time.time() - start
  result = {'step': step, 'split': split, 'crops': crops, 'examples': metrics['val_examples'],
            'top1': float(metrics['val_top1']), 'top5': float(metrics['val_top5']),
            'loss': float(metrics['val_loss']),
            'images_per_s': metrics['val_examples'] / seconds}  # compilation included
  if jax.process_index() == 0:
    os.makedirs(os.path.join(workdir, 'eval'), exist_ok=True)
    with open(os.path.join(workdir, 'eval', f'{step}-{crops}crop-{split}.json'), 'w') as f:
      json.dump(result, f, indent=2)
  manager.close()
  return result


def evaluate(eval_step, state, config, mesh, split=None, crops=1, stop=lambda: False):
  """Loss, top-1, top-5 over every example of the split exactly once (padded, masked; each
  process reads its own shard); None if `stop()` becomes true on the way (asked before every
  batch, or every EVAL_BATCHES_PER_STOP_CHECK-th in a multi-process run: every process has as
  many batches, so all ask at the same ones)."""
  local_batch = config.batch_size // jax.process_count()
  batches = input_pipeline.eval_batches(config, local_batch, split, jax.process_index(),
                                        jax.process_count(), crops)
  totals, every = None, 1 if jax.process_count() == 1 else EVAL_BATCHES_PER_STOP_CHECK
  for i, batch in enumerate(sharding.prefetch(batches, mesh)):
    if i % every == 0 and stop():
      return None
    sums = eval_step(state, batch)
    totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
  totals = jax.device_get(totals)
  count = int(totals['count'])
  return {'val_loss': totals['loss'] / count, 'val_top1': totals['top1'] / count,
          'val_top5': totals['top5'] / count, 'val_examples': count}
