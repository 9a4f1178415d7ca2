"""The host's part of preprocessing (TF ops, one image): only what needs the encoded image.

Decode (for a JPEG only the crop window, and in libjpeg's DCT domain at 1/2, 1/4 or 1/8 where
the window is at least twice the output side), crop, resize, flip, uint8 in and out: the
batches go to the devices as uint8, a quarter of float32's bytes, and the float work
(normalisation, PCA lighting, colour jitter) runs inside the jitted steps (cnn_train/augment.py).
"""
import functools

import tensorflow as tf


def resize_side(config):
  """The shorter side before the crop: `augment.resize`, or 0 → S * 256 / 224 (256 for 224)."""
  return config.augment.resize or round(config.image_size * 256 / 224)


def _square_window(height, width, size, resize, position=None):
  """The square of the original image that becomes the S×S crop of an image whose shorter side
  is resized to `resize`: side S * short / resize, at `position` (two uniform [0, 1) draws: its
  place along the height and the width) or, without it, the central position.

  Computing it in original coordinates lets JPEGs decode only the window (decode_and_crop_jpeg).
  """
  short = tf.minimum(height, width)
  side = tf.cast(tf.round(size * tf.cast(short, tf.float32) / resize), tf.int32)
  side = tf.clip_by_value(side, 1, short)
  if position is None:
    return (height - side) // 2, (width - side) // 2, side, side

  def place(draw, length):  # uniform over 0 .. length - side
    return tf.minimum(tf.cast(draw * tf.cast(length - side + 1, tf.float32), tf.int32),
                      length - side)
  return place(position[0], height), place(position[1], width), side, side


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


DCT_SCALES = (8, 4, 2)  # the downscaling ratios TF's JPEG decoder offers besides 1


def decode_window(image, window, channels, out_side):
  """`image` cropped to window(height, width) = (y, x, h, w), as uint8 [h', w', channels].

  JPEG bytes decode only the window, and at 1/r of its size (r = 8, 4 or 2: libjpeg's DCT-domain
  downscaling, an antialiased shrink at a fraction of the cost) when its shorter side is at
  least r × `out_side`, the shorter side it is resized to next. Other encodings (PNG, ...) decode
  whole, then crop.
  """
  def crop(decoded):
    y, x, h, w = window(tf.shape(decoded)[0], tf.shape(decoded)[1])
    return decoded[y:y + h, x:x + w]

  if image.dtype != tf.string:
    return crop(image)

  def jpeg():
    shape = tf.image.extract_jpeg_shape(image)
    y, x, h, w = window(shape[0], shape[1])
    short = tf.minimum(h, w)

    def decode(ratio):  # the window in the coordinates of the 1/ratio image
      box = tf.stack([y // ratio, x // ratio, h // ratio, w // ratio])
      return lambda: tf.image.decode_and_crop_jpeg(image, box, channels=channels, ratio=ratio)

    branch = tf.reduce_sum(tf.cast(short >= tf.constant(DCT_SCALES) * out_side, tf.int32))
    # branch 3: ratio 8, ... 0: ratio 1
    return tf.switch_case(branch, [decode(1)] + [decode(r) for r in reversed(DCT_SCALES)])

  def other():
    return crop(tf.io.decode_image(image, channels=channels, expand_animations=False))

  return tf.ensure_shape(tf.cond(tf.io.is_jpeg(image), jpeg, other), [None, None, channels])


def resize(image, size, antialias, method='bilinear'):
  """uint8 [h, w, C] → uint8 [height, width, C] (`size`), `method` 'bilinear' or 'bicubic' with
  half-pixel centres (as Pillow and torchvision): an image already of that size comes back
  unchanged.

  `antialias` widens the filter when shrinking (twice the time); without it bilinear still
  reads every pixel of a shrink by less than 2, which is all that is left after decode_window's
  DCT-domain downscaling.
  """
  if tuple(image.shape[:2]) == tuple(size):
    return image
  return tf.ensure_shape(_resample(image, size, antialias, method), [*size, image.shape[-1]])


def _resample(image, size, antialias, method):
  # TF's plain bilinear kernel is ~1.6× faster from float32 than from uint8 input (measured;
  # the antialiased one the other way round).
  if not antialias:
    image = tf.cast(image, tf.float32)
  out = tf.image.resize(image, size, method=method, antialias=antialias)
  # rounded; bicubic's negative lobes can leave 0..255, bilinear's weights cannot
  return tf.cast(tf.clip_by_value(out + 0.5, 0, 255), tf.uint8)


def interpolation(config):
  """The resampling filter of every resize: `augment.interpolation`, 'bilinear' (the default,
  and of runs written before the option) or 'bicubic' (timm's weights)."""
  return config.augment.get('interpolation', 'bilinear')


def _train_window(config, seed, position):
  aug = config.augment
  if aug.crop == 'alexnet':
    return functools.partial(_square_window, size=config.image_size, resize=resize_side(config),
                             position=position)
  if aug.crop == 'inception':
    return functools.partial(_inception_window, seed=seed, area_min=aug.inception_area_min,
                             aspect=tuple(aug.inception_aspect))
  if aug.crop in ('none', 'pad'):
    return _full_window
  raise ValueError(f"augment.crop={aug.crop!r}: use 'alexnet', 'inception', 'pad' or 'none'")


def _to_size(image, config, antialias):
  """uint8 [h, w, C] → uint8 [S, S, C]: resized, or for crop 'pad' centred on a zero canvas
  (Fashion-MNIST's 28×28 on 32×32) as ResNet's CIFAR inputs are never resampled."""
  size = config.image_size
  if config.augment.crop == 'pad':
    return tf.image.resize_with_crop_or_pad(image, size, size)
  return resize(image, (size, size), antialias, interpolation(config))


def train_image(image, seed, config, channels):
  """One training image (encoded bytes or uint8 [H, W, C]) → uint8 [S, S, C]: the crop window,
  resized (bilinear, antialiased only where the shrink left is 2× or more), mirrored at random.

  `seed`: int [2], e.g. (config.seed, example index); the crop and the flip derive from it.
  """
  seed = tf.cast(seed, tf.int64)
  # The square crop's place and the flip: three uniform draws; Inception's box samples from
  # its own seed, folded off this one.
  crop_y, crop_x, flip = tf.unstack(tf.random.stateless_uniform([3], seed))
  box_seed = tf.random.experimental.stateless_fold_in(seed, 1)
  size = config.image_size
  image = decode_window(image, _train_window(config, box_seed, (crop_y, crop_x)), channels, size)
  shrink = tf.cast(tf.reduce_min(tf.shape(image)[:2]), tf.float32) / size
  image = tf.cond(shrink >= 2, lambda: _to_size(image, config, True),
                  lambda: _to_size(image, config, False))
  if config.augment.flip:  # after the resize: the fewest bytes
    image = tf.cond(flip < 0.5, lambda: tf.reverse(image, [1]), lambda: image)
  return image


def eval_image(image, config, channels):
  """One eval image → uint8 [S, S, C]: shorter side to `resize` (antialiased, as torchvision's
  evaluation transform), central S×S crop (crop 'none': the whole image, resized to S×S)."""
  size = config.image_size
  if config.augment.crop in ('none', 'pad'):
    window = _full_window
  else:
    window = functools.partial(_square_window, size=size, resize=resize_side(config))
  return _to_size(decode_window(image, window, channels, size), config, True)


def ten_crops(image, config, channels):
  """AlexNet's test-time crops (Sec. 4.1): the four corner and the central S×S patches of the
  image with its shorter side resized to `resize`, and their mirror images → uint8 [10, S, S, C]."""
  side = resize_side(config)
  image = decode_window(image, _full_window, channels, side)
  height, width = tf.shape(image)[0], tf.shape(image)[1]
  scale = side / tf.cast(tf.minimum(height, width), tf.float32)
  size = config.image_size
  height = tf.maximum(tf.cast(tf.round(tf.cast(height, tf.float32) * scale), tf.int32), size)
  width = tf.maximum(tf.cast(tf.round(tf.cast(width, tf.float32) * scale), tf.int32), size)
  image = _resample(image, [height, width], True, interpolation(config))
  corners = [(0, 0), (0, width - size), (height - size, 0), (height - size, width - size),
             ((height - size) // 2, (width - size) // 2)]
  crops = [image[y:y + size, x:x + size] for y, x in corners]
  crops = tf.stack(crops + [tf.image.flip_left_right(c) for c in crops])
  return tf.ensure_shape(crops, [10, size, size, channels])
