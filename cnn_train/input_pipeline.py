"""Batches: a source's records (cnn_train/sources.py) → the host's image work (image_ops) →
uint8 numpy batches; the devices do the float work (cnn_train/augment.py, in the jitted steps).

Training data is a pure function of (config.seed, step): the order of each epoch is drawn from
(seed, epoch), the crop and flip of an example from (seed, example index) on the host, and its
float augmentation from the same index on the devices (the batch carries it as 'index'). So a
run resumed at step k sees exactly the batches k, k+1, ... of an uninterrupted run. Resuming
reads no earlier epoch: whole epochs are skipped by arithmetic, the rest of one epoch on encoded
records. Evaluation reads every example exactly once, padding the last batch with mask=False
examples.
"""
import math
from typing import Iterator

import tensorflow as tf

from cnn_train import image_ops, sources


def _order_seed(seed, epoch):
  """The seed of an epoch's order; negative second entries never meet an example's (seed, index)."""
  return tf.stack([tf.cast(seed, tf.int64), -1 - epoch])


def train_batches(config, local_batch_size: int, start_step: int = 0,
                  process_index: int = 0, process_count: int = 1) -> Iterator[dict]:
  """Endless {'image': uint8 [B, S, S, C], 'label': int32 [B], 'index': uint32 [B]} batches of
  this process's shard, a pure function of (config.seed, step): starting at `start_step` yields
  batch start_step first. 'index' is each example's position in the global training stream."""
  source = sources.source(config, config.train_split, process_index, process_count,
                          equal_shards=True)
  if not source.size:
    raise ValueError(f'{config.dataset}: split {config.train_split!r} has no examples for '
                     f'process {process_index} of {process_count}')
  first_epoch, offset = divmod(start_step * local_batch_size, source.size)
  ds = tf.data.Dataset.counter(first_epoch).flat_map(
      lambda epoch: source.records(_order_seed(config.seed, epoch)))
  # Skip on records, before any file read or decoding.
  ds = ds.enumerate(start=first_epoch * source.size).skip(offset)

  def prepare(index, record):
    example = source.load(record)
    index = index * process_count + process_index
    seed = tf.stack([tf.cast(config.seed, tf.int64), index])
    return {'image': image_ops.train_image(example['image'], seed, config, source.channels),
            'label': tf.cast(example['label'], tf.int32), 'index': tf.cast(index, tf.uint32)}

  ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  ds = ds.batch(local_batch_size, drop_remainder=True, num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True).prefetch(tf.data.AUTOTUNE)
  return ds.as_numpy_iterator()


def eval_batches(config, local_batch_size: int, split: str | None = None,
                 process_index: int = 0, process_count: int = 1,
                 crops: int = 1) -> Iterator[dict]:
  """Every example of the split exactly once, as {'image': uint8, 'label', 'mask': bool [B]}
  batches; the last ones are padded with mask=False zeros. Every process yields the same number
  of batches (its shard differs from the others' by at most one example). With `crops=10` each
  image is AlexNet's ten crops, [B, 10, S, S, C]."""
  if crops not in (1, 10):
    raise ValueError(f'crops={crops}: 1 (the central crop) or 10 (AlexNet\'s test)')
  preprocess = image_ops.eval_image if crops == 1 else image_ops.ten_crops
  split = split or config.eval_split
  source = sources.source(config, split, process_index, process_count)
  total = sources.split_size(config, split)
  num_batches = math.ceil(math.ceil(total / process_count) / local_batch_size)

  def prepare(record):
    example = source.load(record)
    return {'image': preprocess(example['image'], config, source.channels),
            'label': tf.cast(example['label'], tf.int32), 'mask': tf.constant(True)}

  ds = source.records(None).map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  padding = tf.data.Dataset.from_tensors(tf.nest.map_structure(
      lambda spec: tf.zeros(spec.shape, spec.dtype), ds.element_spec))
  ds = ds.concatenate(padding.repeat(num_batches * local_batch_size - source.size))
  ds = ds.batch(local_batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
  return ds.as_numpy_iterator()
