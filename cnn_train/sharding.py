"""jit over a 2-D Mesh ('data', 'model'): the batch is split on 'data'; parameters are replicated
except where a model annotates an axis 'tower' (flax logical partitioning), which is split on
'model'. With the default model axis of 1 this is plain data parallelism; AlexNet's towers=2
puts each tower's kernels and activations on its own device of a pair."""
import collections
import itertools

import flax.linen as nn
import jax
import numpy as np
from jax._src import distributed  # its client: the coordination service
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

# Logical axis names used by the models → mesh axes.
RULES = (('batch', 'data'), ('tower', 'model'))


def create_mesh(devices=None, model_axis=1):
  """Every device (of every process) by default, as rows of `model_axis` devices of one process:
  a row holds one model replica, the rows split the batch."""
  devices = np.asarray(devices if devices is not None else jax.devices())
  local = jax.local_device_count()
  if model_axis < 1 or devices.size % model_axis or (jax.process_count() > 1
                                                      and local % model_axis):
    raise ValueError(f'model_axis={model_axis} must divide the {devices.size} devices'
                     + (f' and the {local} of each process' if jax.process_count() > 1 else ''))
  return Mesh(devices.reshape(-1, model_axis), ('data', 'model'))


def batch_sharding(mesh):
  return NamedSharding(mesh, P('data'))


def replicated(mesh):
  return NamedSharding(mesh, P())


def state_shardings(boxed_state, mesh):
  """NamedShardings for a state whose parameters may carry flax partitioning boxes."""
  specs = nn.get_partition_spec(boxed_state)
  return nn.logical_to_mesh_sharding(specs, mesh, RULES)


def in_mesh(fn, mesh):
  """`fn` traced with the mesh and the logical rules set, so that the models' activation
  annotations (nn.with_logical_constraint) take effect; elsewhere they do nothing."""
  def traced(*args, **kwargs):
    with jax.sharding.use_abstract_mesh(mesh.abstract_mesh), nn.logical_axis_rules(RULES):
      return fn(*args, **kwargs)
  return traced


def check_batch_size(batch_size, mesh):
  replicas = mesh.shape['data']
  if batch_size % replicas:
    raise ValueError(f'batch_size={batch_size} does not divide over {replicas} '
                     f'{"model replicas" if mesh.shape["model"] > 1 else "devices"}; '
                     f'use a multiple of {replicas}')


STOP_CHECK_TIMEOUT_S = 1800  # how long a process waits at a check for the others
_checks = itertools.count()  # this process's checks so far; every process makes the same ones


def on_any_process(flag, what='check'):
  """Whether `flag` is true on any process: for decisions that every process must take alike
  (stop at this step, skip this checkpoint). Like a collective, every process must make the
  same calls in the same order; `what` ('step 40') names the call in the keys and errors.

  In a multi-process run an exchange over JAX's coordination service (the key-value store of
  the runtime jax.distributed.initialize starts), between the hosts only: each process writes
  its flag under a key of this check, then reads every process's. No device collective, so no
  wait for the devices; the processes wait for each other. Nothing otherwise.
  """
  if jax.process_count() == 1:
    return bool(flag)
  client = distributed.global_state.client
  n = next(_checks)  # keys unique to the check; a run's store lives and dies with its processes
  key = f'cnn_zoo/on_any_process/{n}/{what.replace("/", "_")}'
  client.key_value_set(f'{key}/{jax.process_index()}', str(int(bool(flag))))
  flags = []
  for i in range(jax.process_count()):
    try:
      flags.append(client.blocking_key_value_get(f'{key}/{i}', STOP_CHECK_TIMEOUT_S * 1000))
    except jax.errors.JaxRuntimeError:
      raise RuntimeError(f'process {i} did not reach {what} (check {n}) within '
                         f'{STOP_CHECK_TIMEOUT_S} s; is it stuck?') from None
  if n >= 2 and jax.process_index() == 0:  # to be here, every process has read check n - 2
    client.key_value_delete(f'cnn_zoo/on_any_process/{n - 2}')
  return '1' in flags


def to_global(batch, mesh):
  """This process's part of the batch → global arrays sharded over the mesh's 'data' axis."""
  sharding = batch_sharding(mesh)
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), batch)


def prefetch(batches, mesh, size=2):
  """Put the next `size` batches on the devices while the current step runs."""
  queue = collections.deque()
  for batch in batches:
    queue.append(to_global(batch, mesh))
    if len(queue) > size:
      yield queue.popleft()
  yield from queue
