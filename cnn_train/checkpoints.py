"""Orbax checkpoints in WORKDIR/checkpoints: the last `keep_checkpoints`, plus the best one.

A checkpoint holds the train state (step, params, BatchNorm statistics, optimizer state, the
plateau factor) and a small JSON record (plateau schedule state, epoch, monitored metric). The
RNG and the data position need no saving: both are functions of the seed and the step.

Orbax writes a checkpoint into a temporary folder and renames it when complete, so a process
killed mid-write leaves only a temporary folder, which the next manager deletes unread.
"""
import os
import sys

import jax
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils
from orbax.checkpoint import checkpoint_managers

from cnn_train import runtime, sharding

# A read-only manager (eval.py, predict.py, init_from) is told twice that it is read-only.
runtime.drop_log_lines('read_only=True, setting save_interval_steps',
                       'Given directory is read only')


def create_manager(workdir, config, read_only=False):
  """Orbax manager; the best checkpoint is the one with the lowest monitored validation metric."""
  policy = checkpoint_managers.AnyPreservationPolicy([
      checkpoint_managers.LatestN(config.keep_checkpoints),
      checkpoint_managers.BestN(get_metric_fn=lambda m: -m['monitor'], n=1,
                                keep_checkpoints_without_metrics=False),
  ])
  options = ocp.CheckpointManagerOptions(preservation_policy=policy, create=not read_only,
                                         read_only=read_only, enable_async_checkpointing=False,
                                         cleanup_tmp_directories=not read_only)
  return ocp.CheckpointManager(os.path.abspath(os.path.join(workdir, 'checkpoints')),
                               options=options)


def save(manager, state, record, monitor=None):
  """Save at the state's step; `monitor` (lower is better) ranks it for the best checkpoint.

  A step already saved is kept, unless this save brings its eval (a run stopped during the eval
  saved the step without it)."""
  step = int(state.step)
  if step in manager.all_steps():
    if monitor is None:
      return
    manager.delete(step)
  manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                             record=ocp.args.JsonSave(record)),
               metrics=None if monitor is None else {'monitor': float(monitor)}, force=True)
  manager.wait_until_finished()


def restore(manager, abstract_state, step=None):
  """(state, record) of `step` (default: the latest), laid out like `abstract_state`."""
  step = manager.latest_step() if step is None else step
  restored = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract_state), record=ocp.args.JsonRestore()))
  return restored.state, restored.record


def restore_latest(manager, abstract_state):
  """(state, record) of the newest checkpoint that restores, or None if there is none.

  A newer checkpoint that fails while an older one restores is damaged (a truncated or deleted
  file): it is moved to corrupt_checkpoints/ next to checkpoints/, with a warning, and the run goes
  on from the older one. If none restores, nothing is moved: checkpoints of another config are far
  likelier than all of them damaged. In a multi-process run a checkpoint counts as restored only
  if it restored on every process (each reads its own part), and the first process moves it.
  """
  _silence_abandoned_reads()
  failed = []
  for step in sorted(manager.all_steps(), reverse=True):
    try:
      state, record = restore(manager, abstract_state, step)
      error = None
    except Exception as e:  # orbax and tensorstore raise ValueError, OSError, JSONDecodeError...
      error = e
    if sharding.on_any_process(error is not None, f'restore {step}'):
      failed.append((step, error or RuntimeError('it failed to restore on another process')))
      continue
    for bad, error in failed:
      moved = _set_aside(manager, bad)
      if jax.process_index() == 0:
        print(f'warning: checkpoint {bad} is damaged ({_first_line(error)}); moved it to '
              f'{moved} and resuming from step {step}', file=sys.stderr, flush=True)
    return state, record
  if failed:
    step, error = failed[0]
    raise ValueError(f'checkpoint {step} in {manager.directory} does not restore for this config '
                     f'({_first_line(error)}); was the run made with another config? '
                     'use another --workdir')
  return None


def _silence_abandoned_reads():
  """Drop the tracebacks of the reads a failed restore leaves behind.

  When one array of a checkpoint fails to read, orbax raises at once and closes its event loop;
  the reads of the other arrays finish later (some before the error reaches us) and report,
  through `sys.unraisablehook`, that the loop is closed or that their coroutine was dropped: a
  screenful per failed restore, saying nothing the one-line warning does not. Anything else
  still reaches the previous hook.
  """
  previous = sys.unraisablehook
  if getattr(previous, 'drops_abandoned_reads', False):
    return

  def hook(unraisable):
    abandoned = (isinstance(unraisable.exc_value, RuntimeError)
                 and str(unraisable.exc_value) == 'Event loop is closed'
                 or '_read_array_index_and_device_put' in repr(unraisable.object))
    if not abandoned:
      previous(unraisable)

  hook.drops_abandoned_reads = True
  sys.unraisablehook = hook


def _set_aside(manager, step):
  """Move checkpoint `step` to corrupt_checkpoints/ (the first process; the others wait)."""
  directory = os.fspath(manager.directory)
  target = os.path.join(os.path.dirname(directory), 'corrupt_checkpoints', str(step))
  if jax.process_index() == 0:
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.exists(target):  # damaged twice at the same step: keep both
      target += f'-{len(os.listdir(os.path.dirname(target)))}'
    os.rename(os.path.join(directory, str(step)), target)
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(f'checkpoint {step} set aside')
  manager.reload()
  return target


def _first_line(error, limit=160):
  line = str(error).strip().split('\n')[0]
  return f'{type(error).__name__}: {line[:limit]}{"…" if len(line) > limit else ""}'


def best_step(manager):
  """The kept step with the lowest monitored metric (None if no checkpoint has one)."""
  monitors = {}
  for step in manager.all_steps():
    record = manager.restore(step, args=ocp.args.Composite(record=ocp.args.JsonRestore())).record
    if record.get('monitor') is not None:
      monitors[step] = record['monitor']
  return min(monitors, key=monitors.get) if monitors else None
