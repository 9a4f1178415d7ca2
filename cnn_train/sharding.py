"""Data parallelism with jit over a Mesh: the batch is split on the 'data' axis, the state replicated."""
import collections

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P


def create_mesh(devices=None):
  """A 1-D mesh over `devices` (default: every device of every process)."""
  return Mesh(np.asarray(devices if devices is not None else jax.devices()), ('data',))


def batch_sharding(mesh):
  return NamedSharding(mesh, P('data'))


def replicated(mesh):
  return NamedSharding(mesh, P())


def check_batch_size(batch_size, mesh):
  if batch_size % mesh.size:
    raise ValueError(f'batch_size={batch_size} does not divide over {mesh.size} devices; '
                     f'use a multiple of {mesh.size}')


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
