"""Input pipeline: a TFDS dataset or an ImageFolder tree → tf.data → numpy batches.

Training data is a pure function of (config.seed, step): the order of each epoch is drawn from
(seed, epoch) and every augmentation from stateless random ops seeded by (seed, example index), so
a run resumed at step k sees exactly the batches k, k+1, ... of an uninterrupted run. Resuming reads
no earlier epoch: whole epochs are skipped by arithmetic, the rest of one epoch on encoded records.
Evaluation reads every example exactly once, padding the last batch with mask=False examples.
"""
import contextlib
import functools
import io
import math
import os
import sys
import time
import urllib.parse
from typing import Callable, Iterator, NamedTuple

import numpy as np
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
_IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
STATS = {  # per-channel mean and std of the pixels on the [0, 1] scale
    'imagenet2012': _IMAGENET_STATS,
    'imagenette': _IMAGENET_STATS,
    'folder': _IMAGENET_STATS,
    'cifar10': ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    'mnist': ((0.1307,), (0.3081,)),
    'fashion_mnist': ((0.2860,), (0.3530,)),
}
# AlexNet's PCA lighting (Sec. 4.1): ImageNet RGB eigenvalues, eigenvectors as columns
# (pixels on the [0, 1] scale).
EIGVAL = (0.2175, 0.0188, 0.0045)
EIGVEC = ((-0.5675, 0.7192, 0.4009),
          (-0.5808, -0.0045, -0.8140),
          (-0.5836, -0.6948, 0.4203))
SHUFFLE_BUFFER_BYTES = 1 << 30  # of encoded records: all of MNIST/CIFAR, ~10k ImageNet images
IMAGENET_TARS = ('ILSVRC2012_img_train.tar', 'ILSVRC2012_img_val.tar')


class DatasetInfo(NamedTuple):
  num_classes: int
  num_train: int  # examples in config.train_split (whole split, all processes)
  num_eval: int   # examples in config.eval_split
  channels: int   # of the source images (1 or 3)


# ----------------------------------------------------------------------------------------------
# Preprocessing of one image: encoded bytes (JPEG/PNG) or a uint8 [H, W, C] tensor → float32.


def resize_side(config):
  """The shorter side before the crop: `augment.resize`, or 0 → S * 256 / 224 (256 for 224)."""
  return config.augment.resize or round(config.image_size * 256 / 224)


def _square_window(height, width, size, resize, seed=None):
  """The square of the original image that becomes the S×S crop of an image whose shorter side
  is resized to `resize`: side S * short / resize, at a random (seed) or the central position.

  Computing it in original coordinates lets JPEGs decode only the window (decode_and_crop_jpeg).
  """
  short = tf.minimum(height, width)
  side = tf.cast(tf.round(size * tf.cast(short, tf.float32) / resize), tf.int32)
  side = tf.clip_by_value(side, 1, short)
  if seed is None:
    return (height - side) // 2, (width - side) // 2, side, side
  y_seed, x_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
  y = tf.random.stateless_uniform([], y_seed, 0, height - side + 1, tf.int32)
  x = tf.random.stateless_uniform([], x_seed, 0, width - side + 1, tf.int32)
  return y, x, side, side


def _inception_window(height, width, seed, area_min, aspect):
  """Inception's crop: area in [area_min, 1] of the image, aspect (w/h) in `aspect`, 10 tries."""
  begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
      tf.stack([height, width, 1]), tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), seed,
      min_object_covered=area_min, aspect_ratio_range=aspect, area_range=(area_min, 1.0),
      max_attempts=10, use_image_if_no_bounding_boxes=True)
  y, x, h, w = begin[0], begin[1], size[0], size[1]
  # After 10 failures TF returns the whole image; like torchvision, take the central crop of the
  # image's aspect clamped into range instead (a no-op when the whole image is a valid sample).
  lo, hi = aspect
  ratio = tf.cast(width, tf.float32) / tf.cast(height, tf.float32)
  fw = tf.where(ratio > hi, tf.cast(tf.round(tf.cast(height, tf.float32) * hi), tf.int32), width)
  fh = tf.where(ratio < lo, tf.cast(tf.round(tf.cast(width, tf.float32) / lo), tf.int32), height)
  fw, fh = tf.minimum(fw, width), tf.minimum(fh, height)
  failed = (h == height) & (w == width)
  return (tf.where(failed, (height - fh) // 2, y), tf.where(failed, (width - fw) // 2, x),
          tf.where(failed, fh, h), tf.where(failed, fw, w))


def _full_window(height, width):
  return 0, 0, height, width


def _decode_window(image, window, channels):
  """`image` cropped to window(height, width) = (y, x, h, w), as uint8 [h, w, channels].

  JPEG bytes decode only the window; other encodings (PNG, ...) decode whole, then crop.
  """
  def crop(decoded):
    y, x, h, w = window(tf.shape(decoded)[0], tf.shape(decoded)[1])
    return decoded[y:y + h, x:x + w]

  if image.dtype != tf.string:
    return crop(image)

  def jpeg():
    shape = tf.image.extract_jpeg_shape(image)
    y, x, h, w = window(shape[0], shape[1])
    return tf.image.decode_and_crop_jpeg(image, tf.stack([y, x, h, w]), channels=channels)

  def other():
    return crop(tf.io.decode_image(image, channels=channels, expand_animations=False))

  return tf.ensure_shape(tf.cond(tf.io.is_jpeg(image), jpeg, other), [None, None, channels])


def _resize(image, size):
  """uint8 [h, w, C] → float32 [S, S, C], still 0..255; no resampling if already S×S."""
  def resize(antialias):  # antialiasing changes only shrinking, and costs twice the time
    return lambda: tf.image.resize(image, [size, size], method='bilinear', antialias=antialias)

  if tuple(image.shape[:2]) == (size, size):
    out = tf.cast(image, tf.float32)
  else:
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    out = tf.cond((height == size) & (width == size), lambda: tf.cast(image, tf.float32),
                  lambda: tf.cond((height > size) | (width > size), resize(True), resize(False)))
  return tf.ensure_shape(out, [size, size, image.shape[-1]])


def color_jitter(image, seed, strength, max_value=1.0):
  """Brightness ± 0.4s (of the full scale), contrast and saturation × [1 - 0.4s, 1 + 0.4s],
  stateless, clipped to [0, max_value] (contrast and saturation do not depend on the scale)."""
  s = 0.4 * strength
  seeds = tf.random.experimental.stateless_split(seed, 3)
  image = tf.image.stateless_random_brightness(image, s * max_value, seeds[0])
  image = tf.image.stateless_random_contrast(image, max(0.0, 1 - s), 1 + s, seeds[1])
  if image.shape[-1] == 3:  # saturation needs colour
    image = tf.image.stateless_random_saturation(image, max(0.0, 1 - s), 1 + s, seeds[2])
  return tf.clip_by_value(image, 0.0, max_value)


def pca_offset(seed, std):
  """AlexNet's lighting noise (Sec. 4.1) for one image: the RGB offset (on the [0, 1] scale)
  EIGVEC @ (alpha * EIGVAL) with alpha ~ N(0, std²) per principal component."""
  alpha = tf.random.stateless_normal([3], seed, stddev=std)
  return tf.linalg.matvec(tf.constant(EIGVEC), alpha * tf.constant(EIGVAL))


def pca_lighting(image, seed, std):
  """An RGB image on the [0, 1] scale plus its `pca_offset` on every pixel (not clipped, as in
  the paper). The pipeline adds the same offset inside `normalize` (one pass less)."""
  return image + pca_offset(seed, std)


def normalize(image, dataset, offset=0.0):
  """0..255 pixels → (x / 255 + offset - mean) / std with the dataset's statistics.

  Written as one multiply and one add: at 227×227×3 every pass over the float image costs as
  much as decoding the JPEG window.
  """
  mean, std = (np.asarray(v, np.float32) for v in STATS[
      'folder' if dataset.startswith('folder:') else dataset])
  return image * (1 / (255 * std)) + (offset - mean) / std


def _channels(image, config):
  if image.dtype != tf.string:
    return image.shape[-1]
  return 1 if config.dataset in GREY_DATASETS else 3  # folders and ImageNet: always RGB


def _train_window(config, seed):
  aug = config.augment
  if aug.crop == 'alexnet':
    return functools.partial(_square_window, size=config.image_size, resize=resize_side(config),
                             seed=seed)
  if aug.crop == 'inception':
    return functools.partial(_inception_window, seed=seed, area_min=aug.inception_area_min,
                             aspect=tuple(aug.inception_aspect))
  if aug.crop in ('none', 'pad'):
    return _full_window
  raise ValueError(f"augment.crop={aug.crop!r}: use 'alexnet', 'inception', 'pad' or 'none'")


def _to_size(image, config):
  """uint8 [h, w, C] → float32 [S, S, C]: resized, or for crop 'pad' centred on a zero canvas
  (Fashion-MNIST's 28×28 on 32×32) as ResNet's CIFAR inputs are never resampled."""
  if config.augment.crop == 'pad':
    size = config.image_size
    return tf.cast(tf.image.resize_with_crop_or_pad(image, size, size), tf.float32)
  return _resize(image, config.image_size)


def _pad_and_crop(image, seed, pad):
  """ResNet's CIFAR augmentation (Sec. 4.2): `pad` pixels of zeros on each side of the
  normalised image (zero: the mean), then a random crop of the original size."""
  padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
  return tf.image.stateless_random_crop(padded, tf.shape(image), seed)


def preprocess_train(image, seed, config):
  """One training image (encoded bytes or uint8 [H, W, C]) → normalised float32 [S, S, C].

  `seed`: int [2], e.g. (config.seed, example index); every random choice derives from it.
  """
  aug = config.augment
  channels = _channels(image, config)
  crop_seed, flip_seed, jitter_seed, light_seed = tf.unstack(
      tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 4))
  image = _decode_window(image, _train_window(config, crop_seed), channels)
  if aug.flip:  # on the uint8 window: a quarter of the bytes of the float image
    image = tf.image.stateless_random_flip_left_right(image, flip_seed)
  image = _to_size(image, config)
  if aug.color_jitter:
    image = color_jitter(image, jitter_seed, aug.color_jitter, max_value=255.0)
  offset = 0.0
  if aug.pca_lighting and channels == 3:
    offset = pca_offset(light_seed, aug.pca_lighting)
  image = normalize(image, config.dataset, offset)
  if aug.crop == 'pad':
    image = _pad_and_crop(image, crop_seed, aug.pad)
  return image


def preprocess_eval(image, config):
  """One eval image → normalised float32 [S, S, C]: shorter side to `resize`, central S×S crop
  (crop 'none': the whole image, resized to S×S only if it is not already)."""
  if config.augment.crop in ('none', 'pad'):
    window = _full_window
  else:
    window = functools.partial(_square_window, size=config.image_size, resize=resize_side(config))
  image = _decode_window(image, window, _channels(image, config))
  return normalize(_to_size(image, config), config.dataset)


def ten_crops(image, config):
  """AlexNet's test-time crops (Sec. 4.1): the four corner and the central S×S patches of the
  image with its shorter side resized to `resize`, and their mirror images → [10, S, S, C]."""
  image = _decode_window(image, _full_window, _channels(image, config))
  height, width = tf.shape(image)[0], tf.shape(image)[1]
  scale = resize_side(config) / tf.cast(tf.minimum(height, width), tf.float32)
  height = tf.maximum(tf.cast(tf.round(tf.cast(height, tf.float32) * scale), tf.int32),
                      config.image_size)
  width = tf.maximum(tf.cast(tf.round(tf.cast(width, tf.float32) * scale), tf.int32),
                     config.image_size)
  image = tf.image.resize(image, [height, width], method='bilinear', antialias=True)
  size = config.image_size
  corners = [(0, 0), (0, width - size), (height - size, 0), (height - size, width - size),
             ((height - size) // 2, (width - size) // 2)]
  crops = [image[y:y + size, x:x + size] for y, x in corners]
  crops = tf.stack(crops + [tf.image.flip_left_right(c) for c in crops])
  return normalize(tf.ensure_shape(crops, [10, size, size, image.shape[-1]]), config.dataset)


# ----------------------------------------------------------------------------------------------
# Sources: this process's shard of a split as records, in a seeded order per epoch or file order.


class _Source(NamedTuple):
  size: int            # examples in this process's shard
  records: Callable    # order seed (int64 [2]) or None → tf.data.Dataset of records
  load: Callable       # record → {'image': encoded bytes or uint8 [H, W, C], 'label'}
  num_classes: int
  channels: int


def _dataset_kind(dataset):
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

  return _Source(n, records, load, len(classes), 3)


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

  return _Source(size, records, load, features['label'].num_classes, features['image'].shape[-1])


def _source(config, split, process_index=0, process_count=1, equal_shards=False):
  if _dataset_kind(config.dataset) == 'folder':
    return _folder_source(config, split, process_index, process_count, equal_shards)
  return _tfds_source(config, split, process_index, process_count, equal_shards)


def _split_size(config, split):
  if _dataset_kind(config.dataset) == 'folder':
    root = config.dataset[len('folder:'):]
    classes = folder_listing.classes(root, config.train_split)
    return len(folder_listing.split_files(root, split, classes)[0])
  return _split_info(_tfds_builder(config.dataset, config.data_dir), split,
                     config.dataset).num_examples


def dataset_info(config) -> DatasetInfo:
  """Classes, split sizes and image channels of config.dataset (preparing a TFDS dataset)."""
  source = _source(config, config.train_split)
  return DatasetInfo(num_classes=source.num_classes, num_train=source.size,
                     num_eval=_split_size(config, config.eval_split), channels=source.channels)


# ----------------------------------------------------------------------------------------------
# Batches.


def _order_seed(seed, epoch):
  """The seed of an epoch's order; negative second entries never meet an example's (seed, index)."""
  return tf.stack([tf.cast(seed, tf.int64), -1 - epoch])


def train_batches(config, local_batch_size: int, start_step: int = 0,
                  process_index: int = 0, process_count: int = 1) -> Iterator[dict]:
  """Endless {'image': float32 [B, S, S, C], 'label': int32 [B]} batches of this process's shard,
  a pure function of (config.seed, step): starting at `start_step` yields batch start_step first."""
  source = _source(config, config.train_split, process_index, process_count, equal_shards=True)
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
    seed = tf.stack([tf.cast(config.seed, tf.int64), index * process_count + process_index])
    return {'image': preprocess_train(example['image'], seed, config),
            'label': tf.cast(example['label'], tf.int32)}

  ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  ds = ds.batch(local_batch_size, drop_remainder=True, num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True).prefetch(tf.data.AUTOTUNE)
  return ds.as_numpy_iterator()


def eval_batches(config, local_batch_size: int, split: str | None = None,
                 process_index: int = 0, process_count: int = 1,
                 crops: int = 1) -> Iterator[dict]:
  """Every example of the split exactly once, as {'image', 'label', 'mask': bool [B]} batches;
  the last ones are padded with mask=False zeros. Every process yields the same number of
  batches (its shard differs from the others' by at most one example). With `crops=10` each
  image is AlexNet's ten crops, [B, 10, S, S, C]."""
  if crops not in (1, 10):
    raise ValueError(f'crops={crops}: 1 (the central crop) or 10 (AlexNet\'s test)')
  preprocess = preprocess_eval if crops == 1 else ten_crops
  split = split or config.eval_split
  source = _source(config, split, process_index, process_count)
  total = _split_size(config, split)
  num_batches = math.ceil(math.ceil(total / process_count) / local_batch_size)

  def prepare(record):
    example = source.load(record)
    return {'image': preprocess(example['image'], config),
            'label': tf.cast(example['label'], tf.int32), 'mask': tf.constant(True)}

  ds = source.records(None).map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  padding = tf.data.Dataset.from_tensors(tf.nest.map_structure(
      lambda spec: tf.zeros(spec.shape, spec.dtype), ds.element_spec))
  ds = ds.concatenate(padding.repeat(num_batches * local_batch_size - source.size))
  ds = ds.batch(local_batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
  return ds.as_numpy_iterator()
