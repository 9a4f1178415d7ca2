"""Runs from given weights: a converted checkpoint as a run directory, a run's variables read back
(for fine-tuning with `init_from` and for `predict.py`)."""
import json
import os
import sys

import jax
import numpy as np
from flax import traverse_util

from cnn_train import augment, checkpoints, optim, runs, sharding, sources, train_state


def write_run(workdir, config, variables, num_classes, source=None):
  """WORKDIR/config.json and a step-0 checkpoint holding `variables` (params, batch_stats) of
  `config`'s model with `num_classes` outputs: a run directory that eval.py, predict.py and
  `init_from` read. `source` (a dict) goes to WORKDIR/weights.json: where the weights came from."""
  train_state.check_config(config)
  runs.make_workdir(workdir)
  if os.path.exists(os.path.join(workdir, 'checkpoints')):
    raise ValueError(f'{workdir} already holds a run; give a new --workdir')
  mesh = sharding.create_mesh(None, config.model_axis)
  info = sources.DatasetInfo(num_classes, 0, 0, 3)  # the dataset need not be there
  init, abstract = train_state.train_state_of(config, info, mesh)
  state = jax.jit(init, out_shardings=jax.tree.map(lambda s: s.sharding, abstract))(
      jax.random.key(config.seed))
  state, _ = _with_variables(state, variables, 'the weights')
  manager = checkpoints.create_manager(workdir, config)
  checkpoints.save(manager, state, {'plateau': optim.plateau_to_json(optim.plateau_init(config)),
                                    'epoch': 0.0, 'monitor': None, 'eval_pending': False})
  manager.close()
  with open(os.path.join(workdir, 'config.json'), 'w') as f:
    f.write(config.to_json_best_effort(indent=2))
  if source:
    with open(os.path.join(workdir, 'weights.json'), 'w') as f:
      json.dump(source, f, indent=2)


def init_from(state, config, num_classes):
  """`state` with the parameters and BatchNorm statistics of the run in `config.init_from`.

  A classifier whose number of classes differs (the layers whose output axis is the classes)
  keeps its fresh initialisation, and one line says so; any other difference in names or shapes
  is an error naming the array."""
  source, variables, step = runs.load_variables(config.init_from)
  what = f'init_from={config.init_from}'
  if source.model.name != config.model.name:
    raise ValueError(f'{what} holds {source.model.name}, not {config.model.name}: start from a '
                     'run of the same model')
  state, fresh = _with_variables(state, variables, what, num_classes)
  input_changed = augment.take_input(config, source)  # on every process: the steps use it
  if jax.process_index() == 0:
    if input_changed:
      print(f'init_from: the input its weights were trained on, '
            f'{augment.describe_input(config)}', file=sys.stderr, flush=True)
    print(f'init_from: {", ".join(fresh)} re-initialised for {num_classes} classes; the rest '
          f'from step {step} of {config.init_from}' if fresh else
          f'init_from: every parameter and statistic from step {step} of {config.init_from}',
          file=sys.stderr, flush=True)
  return state


def _with_variables(state, variables, what, num_classes=None):
  """(state with `variables`' params and batch_stats, laid out as the state's, the layers left
  as initialised).

  With `num_classes`, an array that differs from the state's only in its last axis, the
  state's being `num_classes` long, is a classifier of other classes: it is left as it is."""
  fresh, replaced = set(), {}
  for collection in ('params', 'batch_stats'):
    ours = traverse_util.flatten_dict(getattr(state, collection), sep='/')
    theirs = traverse_util.flatten_dict(variables.get(collection, {}), sep='/')
    for path in sorted(ours.keys() ^ theirs.keys()):
      raise ValueError(f'{what} {"lacks" if path in ours else "has"} {collection}/{path}, '
                       f'which the model {"has" if path in ours else "lacks"}: are the model '
                       'options (config.model.overrides) the same?')
    merged = {}
    for path, value in ours.items():
      given = np.asarray(theirs[path])
      if given.shape == value.shape:
        merged[path] = jax.device_put(given.astype(value.dtype), getattr(value, 'sharding', None))
      elif (num_classes and given.shape[:-1] == value.shape[:-1]
            and value.shape[-1] == num_classes):
        merged[path] = value
        fresh.add(path.rsplit('/', 1)[0])
      else:
        raise ValueError(f'{what}: {collection}/{path} has shape {given.shape}, the model\'s '
                         f'is {value.shape}')
    replaced[collection] = traverse_util.unflatten_dict(merged, sep='/')
  return state.replace(**replaced), sorted(fresh)
