"""Where examples come from: this process's shard of a split as a tf.data dataset of records —
a TFDS dataset (prepared here when that needs no user action: Debian's Fashion-MNIST files,
downloads, ImageNet's tars) or an ImageFolder tree — plus the dataset's classes and sizes.

`records(seed)` gives the shard in a seeded order (a stateless permutation of files or paths,
then a seeded shuffle buffer for TFDS), `records(None)` in file order; `load(record)` gives the
encoded image (or uint8 pixels) and the label.
"""
import contextlib
import functools
import io
import os
import sys
import time
import urllib.parse
from typing import Callable, NamedTuple

import requests  # TFDS's HTTP client
import tensorflow as tf
import tensorflow_datasets as tfds

from cnn_train import folder_listing, runtime

try:  # TF only feeds data: the GPUs belong to JAX.
  tf.config.set_visible_devices([], 'GPU')
except RuntimeError:  # TF was initialised earlier; tensorflow-cpu sees no GPU anyway
  pass

# TFDS warnings that say nothing to our users: a dataset folder looked at before it exists, and
# ImageNet's test split (no labels; we never read it) not being there.
runtime.drop_log_lines('has no dataset_info.json', 'split not found at')

TFDS_DATASETS = ('imagenet2012', 'imagenette', 'cifar10', 'mnist', 'fashion_mnist')
GREY_DATASETS = ('mnist', 'fashion_mnist')
SHUFFLE_BUFFER_BYTES = 1 << 30  # of encoded records: all of MNIST/CIFAR, ~10k ImageNet images
IMAGENET_TARS = ('ILSVRC2012_img_train.tar', 'ILSVRC2012_img_val.tar')


class DatasetInfo(NamedTuple):
  num_classes: int
  num_train: int  # examples in config.train_split (whole split, all processes)
  num_eval: int   # examples in config.eval_split
  channels: int   # of the source images (1 or 3)


class Source(NamedTuple):
  size: int            # examples in this process's shard
  records: Callable    # order seed (int64 [2]) or None → tf.data.Dataset of records
  load: Callable       # record → {'image': encoded bytes or uint8 [H, W, C], 'label'}
  num_classes: int
  channels: int




def dataset_kind(dataset):
  if dataset.startswith('folder:'):
    return 'folder'
  if dataset in TFDS_DATASETS:
    return dataset
  raise ValueError(f'unknown dataset {dataset!r}: use one of {", ".join(TFDS_DATASETS)} '
                   'or folder:PATH')


def _folder_source(config, split, process_index, process_count, equal_shards):
  root = config.dataset[len('folder:'):]
  classes = folder_listing.classes(root, config.train_split)
  paths, labels = folder_listing.split_files(root, split, classes)
  # A strided slice of the sorted list; training truncates to equal shards (aligned epochs).
  size = len(paths) // process_count if equal_shards else None
  paths = tf.constant(paths[process_index::process_count][:size])
  labels = tf.constant(labels[process_index::process_count][:size], tf.int64)
  n = int(paths.shape[0])

  def records(seed):
    if seed is None:
      return tf.data.Dataset.from_tensor_slices({'path': paths, 'label': labels})
    # A stateless permutation of the whole epoch: no shuffle buffer, nothing read to skip.
    order = tf.random.experimental.index_shuffle(tf.range(n, dtype=tf.int64), seed, n - 1)
    return tf.data.Dataset.from_tensor_slices(
        {'path': tf.gather(paths, order), 'label': tf.gather(labels, order)})

  def load(record):
    return {'image': tf.io.read_file(record['path']), 'label': record['label']}

  return Source(n, records, load, len(classes), 3)


def _unreachable(builder):
  """Whether a host the dataset downloads from does not answer at once (one quick try each)."""
  hosts = {urllib.parse.urlsplit(url).netloc: url for url in sorted(builder.url_infos or ())}
  for url in hosts.values():
    try:
      requests.head(url, timeout=5)
    except requests.RequestException:
      return True
  return False  # any answer, even an HTTP error, is left to TFDS


@contextlib.contextmanager
def _download_retries(count):
  """TFDS's retries of a failed download (10 by default, minutes when offline) set to `count`."""
  from tensorflow_datasets.core.download import downloader
  default = getattr(downloader, 'MAX_RETRIES', None)
  if count is None or default is None:
    yield
    return
  downloader.MAX_RETRIES = count
  try:
    yield
  finally:
    downloader.MAX_RETRIES = default


def _prepare(builder):
  """TFDS's download_and_prepare with our lines: what is prepared where, then how long it took
  (TFDS's own progress bars only on a terminal). Offline, TFDS tries each file once (files
  already in DIR/downloads still serve) and the first it cannot fetch is named."""
  root = os.fspath(builder.data_dir_root)
  offline = not builder.MANUAL_DOWNLOAD_INSTRUCTIONS and _unreachable(builder)
  if not offline:  # offline, it is one error line or, from files already downloaded, success
    print(f'preparing {builder.name} in {root} (once; later runs read it from there)', flush=True)
  start = time.time()
  tfds.display_progress_bar(sys.stderr.isatty())
  try:
    with _download_retries(0 if offline else None), contextlib.redirect_stdout(io.StringIO()):
      builder.download_and_prepare()  # (the redirect: TFDS's "Downloading and preparing" lines)
  except requests.RequestException as e:
    url = getattr(e.request, 'url', None) or 'a file'
    raise ValueError(
        f'cannot reach {url} to download {builder.name} ({type(e).__name__}): prepare it on a '
        f'machine with internet access (the same command, or `tfds build {builder.name} '
        f'--data_dir=DIR`), copy DIR/{builder.name} to {root}/ here, or use dataset=folder:PATH'
    ) from None
  except Exception as e:  # disk full, a damaged archive, ...: one clear line for the caller
    raise ValueError(f'could not prepare {builder.name} in {root}: {e}') from e
  splits = ', '.join(f'{name} {split.num_examples:,}'
                     for name, split in sorted(builder.info.splits.items()))
  print(f'prepared {builder.name} ({splits} examples) in {time.time() - start:.1f} s', flush=True)


def _fashion_mnist_builder(data_dir):
  """TFDS's fashion_mnist if prepared, else ours from the Debian files, else TFDS's download."""
  from cnn_train import fashion_mnist_debian  # registers the builder only when needed
  local = fashion_mnist_debian.FashionMnistDebian(data_dir=data_dir)
  # Only look for TFDS's own where it could be: TFDS logs a warning for a missing folder.
  tfds_own = os.path.isdir(os.path.join(os.fspath(local.data_dir_root), 'fashion_mnist'))
  builder = tfds.builder('fashion_mnist', data_dir=data_dir) if tfds_own else None
  if builder and builder.is_prepared():
    return builder
  if local.is_prepared():
    return local
  if fashion_mnist_debian.has_source_files():
    _prepare(local)
    return local
  builder = builder or tfds.builder('fashion_mnist', data_dir=data_dir)
  _prepare(builder)
  return builder


@functools.lru_cache(maxsize=8)
def _tfds_builder(name, data_dir):
  """The prepared TFDS builder of `name`, preparing it where that needs no user action."""
  if name == 'fashion_mnist':
    return _fashion_mnist_builder(data_dir)
  builder = tfds.builder(name, data_dir=data_dir)
  if builder.is_prepared():
    return builder
  if name == 'imagenet2012':
    manual = os.path.join(os.fspath(builder.data_dir_root), 'downloads', 'manual')
    if not all(os.path.isfile(os.path.join(manual, tar)) for tar in IMAGENET_TARS):
      raise ValueError(
          f'imagenet2012 is not prepared in {os.fspath(builder.data_dir_root)}: put '
          f'{IMAGENET_TARS[0]} and {IMAGENET_TARS[1]} (from image-net.org) in {manual}/ and start '
          'again; TFDS then prepares the dataset from them (once, a few hours)')
  _prepare(builder)
  return builder


def _split_info(builder, split, name):
  try:
    return builder.info.splits[split]
  except (KeyError, ValueError):
    raise ValueError(f'dataset {name} has no split {split!r}; available splits: '
                     f'{", ".join(sorted(builder.info.splits))}') from None


def _shuffle_buffer(builder, size):
  """Records that fit in SHUFFLE_BUFFER_BYTES, from the dataset's mean record size."""
  info = builder.info
  examples = sum(s.num_examples for s in info.splits.values())
  mean_bytes = int(info.dataset_size) / max(examples, 1) or 100_000
  return int(min(size, max(1024, SHUFFLE_BUFFER_BYTES // mean_bytes)))


def _tfds_source(config, split, process_index, process_count, equal_shards):
  builder = _tfds_builder(config.dataset, config.data_dir)
  _split_info(builder, split, config.dataset)
  if builder.info.file_format.value != 'tfrecord':
    raise ValueError(f'{builder.name} in {builder.data_dir} is stored as '
                     f'{builder.info.file_format.value}; this pipeline reads tfrecord')
  shard = tfds.even_splits(split, n=process_count, drop_remainder=equal_shards)[process_index]
  instructions = builder.info.splits[shard].file_instructions
  files = tf.constant([os.fspath(i.filename) for i in instructions])
  skips = tf.constant([i.skip for i in instructions], tf.int64)
  takes = tf.constant([i.take for i in instructions], tf.int64)
  num_files, size = len(instructions), sum(i.take for i in instructions)
  buffer = _shuffle_buffer(builder, size)

  def read(j):
    return tf.data.TFRecordDataset(files[j]).skip(skips[j]).take(takes[j])

  def records(seed):
    order = tf.range(num_files, dtype=tf.int64)
    if seed is not None:
      files_seed, buffer_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
      order = tf.random.experimental.index_shuffle(order, files_seed, num_files - 1)
    ds = tf.data.Dataset.from_tensor_slices(order).interleave(
        read, cycle_length=min(16, num_files), num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True)
    if seed is not None:
      ds = ds.shuffle(buffer, seed=tf.random.stateless_uniform(
          [], buffer_seed, minval=None, maxval=None, dtype=tf.int64))
    return ds

  features = builder.info.features
  # Keep encoded images encoded: JPEGs are decoded later, only inside the crop window.
  decoders = ({'image': tfds.decode.SkipDecoding()}
              if isinstance(features['image'], tfds.features.Image) else None)

  def load(record):
    example = features.deserialize_example(record, decoders=decoders)
    return {'image': example['image'], 'label': example['label']}

  return Source(size, records, load, features['label'].num_classes, features['image'].shape[-1])


def source(config, split, process_index=0, process_count=1, equal_shards=False):
  if dataset_kind(config.dataset) == 'folder':
    return _folder_source(config, split, process_index, process_count, equal_shards)
  return _tfds_source(config, split, process_index, process_count, equal_shards)


def split_size(config, split):
  if dataset_kind(config.dataset) == 'folder':
    root = config.dataset[len('folder:'):]
    classes = folder_listing.classes(root, config.train_split)
    return len(folder_listing.split_files(root, split, classes)[0])
  return _split_info(_tfds_builder(config.dataset, config.data_dir), split,
                     config.dataset).num_examples


def image_channels(config):
  """Channels an encoded image of config.dataset decodes to: grey for MNIST's, else RGB."""
  return 1 if config.dataset in GREY_DATASETS else 3


def dataset_info(config) -> DatasetInfo:
  """Classes, split sizes and image channels of config.dataset (preparing a TFDS dataset)."""
  train = source(config, config.train_split)
  return DatasetInfo(num_classes=train.num_classes, num_train=train.size,
                     num_eval=split_size(config, config.eval_split), channels=train.channels)
