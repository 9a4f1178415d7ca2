"""A run directory: creating it, its config.json, its checkpoints' steps, and the variables of one
of them read back without the run's dataset."""
import json
import os

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from cnn_train import checkpoints


def make_workdir(workdir):
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise ValueError(f'--workdir={workdir} is a file, not a directory: give a new or a run\'s '
                     'directory')
  try:
    os.makedirs(workdir, exist_ok=True)
  except OSError as e:  # no permission, read-only file system, ...
    raise ValueError(f'cannot create the workdir {workdir}: {e.strerror}') from None


def check_workdir(workdir, config):
  """A workdir holds one run: refuse to resume a run of another model in it. Returns the run's
  recorded config, or None."""
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    return None
  with open(path) as f:
    previous = ml_collections.ConfigDict(json.load(f))
  if previous.model.name != config.model.name:
    raise ValueError(f'{workdir} holds a run of {previous.model.name}, not {config.model.name}; '
                     'use another --workdir')
  return previous


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


def load_variables(workdir, checkpoint='latest'):
  """(config, {'params', 'batch_stats'} as numpy, step) of a run's checkpoint ('latest', 'best'
  or a step), read without the run's dataset."""
  config = load_config(workdir)
  manager = checkpoints.create_manager(workdir, config, read_only=True)
  step = choose_step(manager, workdir, checkpoint)
  # The saved arrays as they are: no abstract state, which would need the dataset's classes.
  state = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore())).state
  manager.close()
  return config, {k: jax.tree.map(np.asarray, state[k]) for k in ('params', 'batch_stats')
                  if state.get(k)}, step
