"""Evaluate a run's checkpoint: every example of a split exactly once, 1 or 10 crops per image."""
import json
import os
import sys
import time

import jax
import ml_collections

from cnn_train import checkpoints, sharding, sources, trainer


def load_config(workdir):
  path = os.path.join(workdir, 'config.json')
  if not os.path.isdir(workdir):
    raise ValueError(f'no run directory {workdir!r}: give the --workdir of a train.py run')
  if not os.path.exists(path):
    raise ValueError(f'{workdir} has no config.json: is it the --workdir of a train.py run?')
  with open(path) as f:
    return ml_collections.ConfigDict(json.load(f))


def choose_step(manager, workdir, checkpoint):
  """The step that 'latest', 'best' or a step number names, or a one-line error."""
  steps_kept = manager.all_steps()
  if not steps_kept:
    raise ValueError(f'{workdir} has no checkpoint yet: train first (train.py --workdir={workdir})')
  if checkpoint == 'latest':
    return manager.latest_step()
  if checkpoint == 'best':
    best = checkpoints.best_step(manager)
    if best is None:
      raise ValueError(f'{workdir} has no evaluated checkpoint to call best; use --checkpoint=latest')
    return best
  if not checkpoint.isdigit() or int(checkpoint) not in steps_kept:
    raise ValueError(f'--checkpoint={checkpoint}: use latest, best or one of the kept steps '
                     f'{", ".join(map(str, steps_kept))}')
  return int(checkpoint)


def evaluate_checkpoint(workdir, checkpoint='latest', crops=1, split=None, devices=None):
  """Evaluate a checkpoint of the run in `workdir`; writes and returns the result."""
  config = load_config(workdir)
  split = split or config.eval_split
  mesh = sharding.create_mesh(devices, config.model_axis)
  sharding.check_batch_size(config.batch_size, mesh)
  info = sources.dataset_info(config)
  _, abstract_state = trainer.train_state_of(config, info, mesh)
  manager = checkpoints.create_manager(workdir, config, read_only=True)
  step = choose_step(manager, workdir, checkpoint)
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
  _, eval_step = trainer.jitted_steps(config, abstract_state, mesh)
  start = time.time()
  metrics = trainer.evaluate(eval_step, state, config, mesh, split, crops)
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
