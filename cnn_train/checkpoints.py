"""Orbax checkpoints in WORKDIR/checkpoints: the last `keep_checkpoints`, plus the best one.

A checkpoint holds the train state (step, params, BatchNorm statistics, optimizer state, the
plateau factor) and a small JSON record (plateau schedule state, epoch, monitored metric). The
RNG and the data position need no saving: both are functions of the seed and the step.
"""
import os

import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers


def create_manager(workdir, config, read_only=False):
  """Orbax manager; the best checkpoint is the one with the lowest monitored validation metric."""
  policy = checkpoint_managers.AnyPreservationPolicy([
      checkpoint_managers.LatestN(config.keep_checkpoints),
      checkpoint_managers.BestN(get_metric_fn=lambda m: -m['monitor'], n=1,
                                keep_checkpoints_without_metrics=False),
  ])
  options = ocp.CheckpointManagerOptions(preservation_policy=policy, create=not read_only,
                                         read_only=read_only, enable_async_checkpointing=False)
  return ocp.CheckpointManager(os.path.abspath(os.path.join(workdir, 'checkpoints')),
                               options=options)


def save(manager, state, record, monitor=None):
  """Save at the state's step; `monitor` (lower is better) ranks it for the best checkpoint."""
  step = int(state.step)
  if step in manager.all_steps():
    return
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


def best_step(manager):
  """The kept step with the lowest monitored metric (None if no checkpoint has one)."""
  monitors = {}
  for step in manager.all_steps():
    record = manager.restore(step, args=ocp.args.Composite(record=ocp.args.JsonRestore())).record
    if record.get('monitor') is not None:
      monitors[step] = record['monitor']
  return min(monitors, key=monitors.get) if monitors else None
