"""The input pipeline (sources, the host's image work, batches) on tiny datasets written to
tmp_path: an ImageFolder of JPEGs and PNGs, and Fashion-MNIST-format gz idx files built through
our offline TFDS builder. No network. The devices' float work: tests/test_augment.py."""
import gzip
import os

import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from cnn_train import image_ops, sources
from cnn_train import input_pipeline as ip

TRAIN_PER_CLASS = {'cat': 4, 'dog': 4, 'fox': 4}  # 12 train images
VAL_PER_CLASS = {'cat': 3, 'dog': 2, 'fox': 2}     # 7 val images: not a multiple of 3


def make_config(dataset, size=32, **augment):
  aug = dict(crop='alexnet', resize=36, flip=True, color_jitter=0.0, pca_lighting=0.0,
             inception_area_min=0.08, inception_aspect=(3 / 4, 4 / 3))
  aug.update(augment)
  return ml_collections.ConfigDict(dict(
      dataset=dataset, data_dir=None, train_split='train', eval_split='val', image_size=size,
      seed=0, augment=aug))


def write_image(path, rng, height, width):
  image = rng.integers(0, 256, (height, width, 3), np.uint8)
  encode = tf.io.encode_png if path.endswith('.png') else tf.io.encode_jpeg
  tf.io.write_file(path, encode(image))


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
  """folder:ROOT with train/ and val/ of random JPEGs (some .JPEG) and PNGs of several sizes."""
  root = tmp_path_factory.mktemp('imagefolder')
  rng = np.random.default_rng(0)
  for split, counts in (('train', TRAIN_PER_CLASS), ('val', VAL_PER_CLASS)):
    for name, count in counts.items():
      os.makedirs(root / split / name)
      for i in range(count):
        ext = ('.jpg', '.JPEG', '.png')[i % 3]
        write_image(str(root / split / name / f'{i}{ext}'), rng, 40 + 4 * i, 56 - 4 * i)
      (root / split / name / 'notes.txt').write_text('not an image')
  return f'folder:{root}'


def write_idx(path, array):
  header = bytes([0, 0, 8, array.ndim]) + b''.join(d.to_bytes(4, 'big') for d in array.shape)
  with gzip.open(path, 'wb') as f:
    f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture(scope='module')
def fashion(tmp_path_factory):
  """Tiny Fashion-MNIST gz idx files (10 train, 7 test images) and a fresh TFDS data_dir."""
  src = tmp_path_factory.mktemp('fashion_src')
  rng = np.random.default_rng(1)
  arrays = {}
  for split, prefix, n in (('train', 'train', 10), ('test', 't10k', 7)):
    images = rng.integers(0, 256, (n, 28, 28), np.uint8)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    write_idx(src / f'{prefix}-images-idx3-ubyte.gz', images)
    write_idx(src / f'{prefix}-labels-idx1-ubyte.gz', labels)
    arrays[split] = images, labels
  old = os.environ.get('FASHION_MNIST_DIR')
  os.environ['FASHION_MNIST_DIR'] = str(src)
  config = make_config('fashion_mnist', size=28, crop='none', resize=0, flip=False)
  config.data_dir = str(tmp_path_factory.mktemp('tfds'))
  config.train_split, config.eval_split = 'train', 'test'
  sources.dataset_info(config)  # prepares it while the environment variable is set
  if old is None:
    del os.environ['FASHION_MNIST_DIR']
  else:
    os.environ['FASHION_MNIST_DIR'] = old
  return config, arrays


def train_image(image, seed, config):
  return image_ops.train_image(image, seed, config, 3).numpy()


def eval_image(image, config):
  return image_ops.eval_image(image, config, image.shape[-1] if image.dtype != tf.string else 3
                              ).numpy()


def take(iterator, n):
  return [next(iterator) for _ in range(n)]


@pytest.mark.parametrize('crop', ['alexnet', 'inception', 'none'])
def test_train_batches_shapes_dtypes_ranges(folder, crop):
  config = make_config(folder, crop=crop, color_jitter=0.4)
  batches = ip.train_batches(config, 5)
  batch, second = next(batches), next(batches)
  assert batch['image'].shape == (5, 32, 32, 3) and batch['image'].dtype == np.uint8
  assert batch['label'].shape == (5,) and batch['label'].dtype == np.int32
  assert set(batch['label']) <= {0, 1, 2}
  assert batch['image'].std() > 20  # real pixels (noise), not padding
  # Each example's position in the training stream, for its float augmentation on the device.
  assert batch['index'].dtype == np.uint32
  assert np.concatenate([batch['index'], second['index']]).tolist() == list(range(10))


def test_dataset_info_folder(folder):
  assert sources.dataset_info(make_config(folder)) == sources.DatasetInfo(3, 12, 7, 3)


def test_fashion_mnist_from_idx_files_stays_grey(fashion):
  config, arrays = fashion
  assert sources.dataset_info(config) == sources.DatasetInfo(10, 10, 7, 1)
  batch = next(ip.train_batches(config, 4))
  assert batch['image'].shape == (4, 28, 28, 1) and batch['image'].dtype == np.uint8
  pixels = batch['image'][..., 0]  # crop 'none' at 28: the pixels themselves
  images, labels = arrays['train']
  for image, label in zip(pixels, batch['label']):
    index = [i for i in range(len(images)) if np.array_equal(images[i], image)]
    assert len(index) == 1 and labels[index[0]] == label


def test_crop_and_flip_random_across_elements_fixed_by_seed(folder):
  config = make_config(folder, crop='inception')
  image = tf.io.encode_jpeg(np.random.default_rng(2).integers(0, 256, (48, 64, 3), np.uint8))
  outputs = [train_image(image, [0, i], config) for i in range(6)]
  assert len({o.tobytes() for o in outputs}) == 6  # every element its own crop
  np.testing.assert_array_equal(outputs[3], train_image(image, [0, 3], config))
  assert not np.array_equal(outputs[3], train_image(image, [1, 3], config))

  # crop 'none': only the flip is random; both outcomes occur, each exactly a mirror image.
  config = make_config(folder, crop='none', flip=False)
  plain = train_image(image, [0, 0], config)
  config.augment.flip = True
  flipped = [not np.array_equal(train_image(image, [0, i], config), plain) for i in range(16)]
  for i in range(16):
    expected = plain[:, ::-1] if flipped[i] else plain
    np.testing.assert_array_equal(train_image(image, [0, i], config), expected)
  assert 3 <= sum(flipped) <= 13


def test_jpeg_window_decoding_matches_decode_then_crop(folder):
  """The fused JPEG window crops like decode + crop of the decoded image (same pixels; 4:4:4
  chroma, as 4:2:0 upsampling differs at the window edge)."""
  config = make_config(folder, crop='alexnet', resize=40, flip=False)
  decoded = np.random.default_rng(3).integers(0, 256, (50, 70, 3), np.uint8)
  encoded = tf.io.encode_jpeg(decoded, quality=100, chroma_downsampling=False)
  as_decoded = tf.io.decode_jpeg(encoded)
  for i in range(4):
    np.testing.assert_array_equal(train_image(encoded, [0, i], config),
                                  train_image(as_decoded, [0, i], config))
  np.testing.assert_array_equal(eval_image(encoded, config), eval_image(as_decoded, config))


def test_inception_window_falls_back_to_the_central_crop():
  # A 10×200 strip: no crop of area >= 8 % has an aspect ratio within [3/4, 4/3].
  y, x, h, w = image_ops._inception_window(tf.constant(10), tf.constant(200),
                                           tf.constant([0, 1]), 0.08, (3 / 4, 4 / 3))
  assert (int(y), int(x), int(h), int(w)) == (0, (200 - 13) // 2, 10, 13)


def test_resume_equals_the_tail_of_an_uninterrupted_run(folder):
  config = make_config(folder, crop='inception', pca_lighting=0.1, color_jitter=0.2)
  full = take(ip.train_batches(config, 5), 7)  # 35 examples: crosses two epochs of 12
  resumed = take(ip.train_batches(config, 5, start_step=4), 3)
  for a, b in zip(full[4:], resumed):
    for key in ('image', 'label', 'index'):  # the index: the same float augmentation
      np.testing.assert_array_equal(a[key], b[key])
  # Each epoch is a new permutation of all 12 examples, drawn from the seed.
  config.augment.update(crop='none', flip=False, pca_lighting=0.0, color_jitter=0.0)
  batches = take(ip.train_batches(config, 6), 4)
  epochs = [np.concatenate([b['image'] for b in batches[i:i + 2]]) for i in (0, 2)]
  assert {e.tobytes() for e in epochs[0]} == {e.tobytes() for e in epochs[1]}
  assert len({e.tobytes() for e in epochs[0]}) == 12
  assert not np.array_equal(epochs[0], epochs[1])
  config.seed = 1
  assert not np.array_equal(next(ip.train_batches(config, 6))['image'], batches[0]['image'])


def test_tfds_epochs_are_seeded_permutations_and_resume(fashion):
  config, _ = fashion
  config = config.copy_and_resolve_references()
  config.train_split = 'train[:4]+test[:3]+train[6:9]'  # three files to shuffle, 10 examples
  config.augment.flip = True
  full = take(ip.train_batches(config, 4), 5)  # two epochs
  for a, b in zip(full[3:], take(ip.train_batches(config, 4, start_step=3), 2)):
    np.testing.assert_array_equal(a['image'], b['image'])
    np.testing.assert_array_equal(a['label'], b['label'])
  config.augment.flip = False
  images = np.concatenate([b['image'] for b in take(ip.train_batches(config, 4), 5)])
  epochs = [{im.tobytes() for im in images[:10]}, {im.tobytes() for im in images[10:20]}]
  assert len(epochs[0]) == 10 and epochs[0] == epochs[1]
  assert not np.array_equal(images[:10], images[10:20])


def test_eval_covers_every_example_once(folder):
  config = make_config(folder)
  batches = list(ip.eval_batches(config, 3))
  assert len(batches) == 3
  mask = np.concatenate([b['mask'] for b in batches])
  labels = np.concatenate([b['label'] for b in batches])
  assert mask.dtype == np.bool_ and mask.tolist() == [True] * 7 + [False] * 2
  assert labels[:7].tolist() == [0, 0, 0, 1, 1, 2, 2]  # sorted file order of val/
  assert not batches[-1]['image'][1:].any()  # zero padding
  # Eval preprocessing only: the same images twice.
  again = np.concatenate([b['image'] for b in ip.eval_batches(config, 3)])
  np.testing.assert_array_equal(np.concatenate([b['image'] for b in batches]), again)


def test_eval_of_a_tfds_split(fashion):
  config, arrays = fashion
  batches = list(ip.eval_batches(config, 3))
  assert len(batches) == 3 and sum(b['mask'].sum() for b in batches) == 7
  images, labels = arrays['test']
  seen = []
  for b in batches:
    pixels = b['image'][..., 0]
    for image, label in zip(pixels[b['mask']], b['label'][b['mask']]):
      (index,) = [i for i in range(7) if np.array_equal(images[i], image)]
      assert labels[index] == label
      seen.append(index)
  assert sorted(seen) == list(range(7))


def test_shards_are_disjoint_and_cover_the_split(folder, fashion):
  config = make_config(folder, crop='none', flip=False)

  def images(batches, masked=True):
    return [im.tobytes() for b in batches
            for im in (b['image'][b['mask']] if masked else b['image'])]

  whole = images(ip.eval_batches(config, 3))
  parts = [images(ip.eval_batches(config, 3, process_index=p, process_count=2)) for p in (0, 1)]
  assert sorted(parts[0] + parts[1]) == sorted(whole) and not set(parts[0]) & set(parts[1])
  assert [len(list(ip.eval_batches(config, 3, process_index=p, process_count=2)))
          for p in (0, 1)] == [2, 2]  # the same number of batches on every process

  train = [images([next(ip.train_batches(config, 6, process_index=p, process_count=2))], False)
           for p in (0, 1)]  # one epoch of each shard
  assert len(set(train[0])) == 6 and not set(train[0]) & set(train[1])

  tfds_config, _ = fashion
  tfds_parts = [images(ip.eval_batches(tfds_config, 2, process_index=p, process_count=2))
                for p in (0, 1)]
  assert len(tfds_parts[0]) + len(tfds_parts[1]) == 7
  assert not set(tfds_parts[0]) & set(tfds_parts[1])


def test_clear_errors(folder, fashion, tmp_path):
  with pytest.raises(ValueError, match='not a directory'):
    sources.dataset_info(make_config(f'folder:{tmp_path}/missing'))
  config = make_config(folder)
  config.eval_split = 'test'
  with pytest.raises(ValueError, match=r"no split folder .*test.*splits: \['train', 'val'\]"):
    next(ip.eval_batches(config, 2))
  with pytest.raises(ValueError, match="unknown dataset 'nope'"):
    sources.dataset_info(make_config('nope'))
  config, _ = fashion
  with pytest.raises(ValueError,
                     match="dataset fashion_mnist has no split 'validation'.*test, train"):
    next(ip.eval_batches(config, 2, split='validation'))
  config = make_config('imagenet2012')
  config.data_dir = str(tmp_path / 'tfds')
  manual = os.path.join(config.data_dir, 'downloads', 'manual')
  with pytest.raises(ValueError, match=f'ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar .*'
                                       f'in {manual}/'):
    sources.dataset_info(config)


def test_pad_crop_leaves_the_image_to_the_device_and_centres_fashion_mnist_on_32_by_32():
  """crop 'pad': the host only centres the image on a zero canvas of the config's size
  (the shift with zeros happens on the device, after normalisation: test_augment.py)."""
  config = make_config('cifar10', size=32, crop='pad', pad=4, flip=False)
  image = tf.constant(np.random.default_rng(0).integers(0, 256, (32, 32, 3), np.uint8))
  np.testing.assert_array_equal(train_image(image, [0, 5], config), image.numpy())
  np.testing.assert_array_equal(eval_image(image, config), image.numpy())
  config = make_config('fashion_mnist', size=32, crop='pad', pad=4, flip=False)
  image = tf.fill((28, 28, 1), tf.constant(255, tf.uint8))
  out = eval_image(image, config)[..., 0]
  assert (out[2:30, 2:30] == 255).all() and not out[:2].any() and not out[:, 30:].any()
  assert image_ops.train_image(image, tf.constant([0, 1], tf.int64), config, 1).shape == (
      32, 32, 1)


def test_dct_domain_downscaling_decodes_a_large_window_at_a_fraction():
  """A window at least r × the output side decodes at 1/r in libjpeg's DCT domain: the result
  is the r×-smaller window (libjpeg's own scaled decode of the full image, cropped), and it
  resizes to what the full-size window gives, up to the two filters' difference."""
  rng = np.random.default_rng(4)
  smooth = tf.image.resize(rng.integers(0, 256, (16, 24, 3)).astype(np.float32), (256, 384))
  encoded = tf.io.encode_jpeg(tf.cast(smooth, tf.uint8), quality=95,
                             chroma_downsampling=False)  # 4:4:4: no upsampling at the edges
  window = lambda h, w: (16, 40, 200, 200)  # noqa: E731
  for out_side, ratio in ((100, 2), (50, 4), (25, 8), (101, 1)):
    got = image_ops.decode_window(encoded, window, 3, out_side).numpy()
    assert got.shape == (200 // ratio, 200 // ratio, 3)
    scaled = tf.io.decode_jpeg(encoded, ratio=ratio).numpy()
    np.testing.assert_array_equal(
        got, scaled[16 // ratio:16 // ratio + 200 // ratio, 40 // ratio:40 // ratio + 200 // ratio])
  full = image_ops.decode_window(encoded, window, 3, 1000)  # no downscaling
  fast = image_ops.resize(image_ops.decode_window(encoded, window, 3, 50), (50, 50), False)
  slow = image_ops.resize(full, (50, 50), True)
  assert np.abs(fast.numpy().astype(int) - slow.numpy()).mean() < 2  # of 255


def _half_pixel_bilinear(image, height, width):
  """Bilinear resampling with half-pixel centres (Pillow's, torchvision's), in numpy float64."""
  def taps(out, size):
    x = np.clip((np.arange(out) + 0.5) * size / out - 0.5, 0, size - 1)
    low = np.floor(x).astype(int)
    return low, np.minimum(low + 1, size - 1), x - low
  y0, y1, wy = taps(height, image.shape[0])
  x0, x1, wx = taps(width, image.shape[1])
  image = image.astype(np.float64)
  rows = image[y0] * (1 - wy)[:, None, None] + image[y1] * wy[:, None, None]
  return rows[:, x0] * (1 - wx)[None, :, None] + rows[:, x1] * wx[None, :, None]


def test_training_resize_is_half_pixel_bilinear_and_keeps_an_image_of_its_size():
  rng = np.random.default_rng(5)
  image = rng.integers(0, 256, (199, 170, 3), np.uint8)
  for size in ((227, 227), (120, 90)):  # an enlargement, a shrink by less than 2
    got = image_ops.resize(tf.constant(image), size, False).numpy()
    expected = np.floor(_half_pixel_bilinear(image, *size) + 0.5)
    assert np.abs(got - expected).max() <= 1 and np.mean(got == expected) > 0.99
  # Of the same size, whether or not its shape is known before the graph runs: unchanged.
  for antialias in (False, True):
    unknown = tf.function(lambda x: image_ops.resize(x, (199, 170), antialias),  # noqa: B023
                          input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)])
    np.testing.assert_array_equal(unknown(tf.constant(image)), image)
    np.testing.assert_array_equal(image_ops.resize(tf.constant(image), (199, 170), antialias),
                                  image)
