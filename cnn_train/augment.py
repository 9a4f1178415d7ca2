"""The float work of preprocessing, on the devices inside the jitted steps: uint8 batches → the
model's float32 input as its paper fed it (`config.input`), with AlexNet's PCA lighting and colour
jitter (training) and ResNet's CIFAR pad-and-crop.

Every random choice of an example is drawn from its key, fold_in(key(config.seed), index) with
`index` the example's global position in the training stream (the batch carries it), so
training stays a pure function of (seed, step) wherever and with whatever batch an example
lands. The colour operations are dm_pix's, which compute tf.image's functions.
"""
import dm_pix as pix
import jax
import jax.numpy as jnp
import numpy as np

_IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
STATS = {  # per-channel mean and std of the training split's pixels on the [0, 1] scale
    'imagenet2012': _IMAGENET_STATS,
    'imagenette': _IMAGENET_STATS,
    'folder': _IMAGENET_STATS,  # photos of your own: ImageNet's, as for ImageNet-like data
    'cifar10': ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    'mnist': ((0.1307,), (0.3081,)),
    'fashion_mnist': ((0.2860,), (0.3530,)),
}
# How a paper fed pixels p (0-255) to its network: the model's input is (p - mean) / std per
# channel, with (mean, std) in pixel units from the dataset's [0, 1]-scale statistics.
TRANSFORMS = {
    # AlexNet (Sec. 2), VGG (2.1), ResNet (3.4), GoogLeNet's and NiN's Caffe models: raw RGB
    # values minus the training set's mean (per channel here; AlexNet and ResNet used a mean image)
    'minus_mean': lambda mean, std: (255 * mean, np.ones_like(std)),
    # (p / 255 - mean) / std: torchvision's weights, and every run before the papers' inputs
    'standardize': lambda mean, std: (255 * mean, 255 * std),
    # Inception-v3/v4 as released (TF-slim): [-1, 1]
    'symmetric': lambda mean, std: (np.full_like(mean, 127.5), np.full_like(std, 127.5)),
    # LeNet-5 (Sec. II-A): background (0) -0.1, foreground (255) 1.175
    'lenet': lambda mean, std: (np.full_like(mean, 0.1 * 255 / 1.275), np.full_like(std, 200.0)),
}
LEGACY_INPUT = {'transform': 'standardize', 'mean': (), 'std': ()}  # runs without config.input
# AlexNet's PCA lighting (Sec. 4.1): ImageNet's RGB eigenvalues and eigenvectors (as columns) on
# the [0, 1] scale (fb.resnet.torch's, as torchvision's references use them); on 0-255 pixels the
# offset is 255 times as large, the same change of the image.
EIGVAL = (0.2175, 0.0188, 0.0045)
EIGVEC = ((-0.5675, 0.7192, 0.4009),
          (-0.5808, -0.0045, -0.8140),
          (-0.5836, -0.6948, 0.4203))


def stats(dataset):
  """(mean, std) per channel of `dataset`'s pixels on the [0, 1] scale, float32 arrays."""
  mean, std = STATS['folder' if dataset.startswith('folder:') else dataset]
  return np.asarray(mean, np.float32), np.asarray(std, np.float32)


def input_stats(config):
  """(mean, std) per channel in pixel units of the model's input, (p - mean) / std: those
  config.input gives, else its transform's on config.dataset."""
  given = config.get('input', LEGACY_INPUT)
  if len(given['mean']):
    return np.asarray(given['mean'], np.float32), np.asarray(given['std'], np.float32)
  if given['transform'] not in TRANSFORMS:
    raise ValueError(f'input.transform={given["transform"]!r}: choose one of '
                     f'{", ".join(TRANSFORMS)}')
  mean, std = TRANSFORMS[given['transform']](*stats(config.dataset))
  return np.asarray(mean, np.float32), np.asarray(std, np.float32)


def describe_input(config):
  """'minus_mean: (p - (123.7, 116.3, 103.5)) / (1, 1, 1)', for a line on the screen."""
  mean, std = (', '.join(f'{v:.4g}' for v in values) for values in input_stats(config))
  return f'{config.get("input", LEGACY_INPUT)["transform"]}: (p - ({mean})) / ({std})'


def resolve_input(config):
  """Write input_stats(config) into config.input (what a run's config.json records)."""
  take_input(config, config)


def take_input(config, source):
  """Give `config` the model input of `source` (a run's config: a resumed run, the weights a run
  starts from), so that the network sees what it was trained on; True if that changed it."""
  mean, std = input_stats(source)
  changed = not all(np.array_equal(a, b) for a, b in zip((mean, std), input_stats(config)))
  config.input.update(transform=source.get('input', LEGACY_INPUT)['transform'],
                      mean=tuple(map(float, mean)), std=tuple(map(float, std)))
  return changed


def normalize(images, mean, std, offset=0.0):
  """0-255 pixels (uint8 or float) plus `offset` → (p + offset - mean) / std: one multiply and
  one add."""
  return images.astype(jnp.float32) * (1 / std) + (offset - mean) / std


def pca_offset(key, std):
  """AlexNet's lighting noise for one image: the RGB offset in pixel units,
  255 · EIGVEC @ (alpha * EIGVAL) with alpha ~ N(0, std²) per principal component."""
  alpha = std * jax.random.normal(key, (3,))
  return 255 * jnp.asarray(EIGVEC, jnp.float32) @ (alpha * jnp.asarray(EIGVAL, jnp.float32))


def jitter_factors(key, strength):
  """Brightness delta uniform in ±0.4s (of the [0, 1] scale), contrast and saturation factors
  uniform in [max(0, 1 - 0.4s), 1 + 0.4s]: tf.image's stateless_random_* for strength s."""
  s = 0.4 * strength
  brightness, contrast, saturation = jax.random.split(key, 3)
  factor = lambda k: jax.random.uniform(k, (), minval=max(0.0, 1 - s), maxval=1 + s)
  return (jax.random.uniform(brightness, (), minval=-s, maxval=s), factor(contrast),
          factor(saturation))


def color_jitter(image, factors):
  """Brightness, then contrast, then saturation (colour images) of an image on the [0, 1] scale,
  clipped to [0, 1]: tf.image's adjust_brightness, adjust_contrast, adjust_saturation."""
  brightness, contrast, saturation = factors
  image = pix.adjust_contrast(pix.adjust_brightness(image, brightness), contrast)
  if image.shape[-1] == 3:  # saturation needs colour
    image = pix.adjust_saturation(image, saturation)
  return jnp.clip(image, 0.0, 1.0)


def pad_and_crop(image, key, pad):
  """ResNet's CIFAR augmentation (Sec. 4.2): `pad` pixels of zeros on each side of the model's
  input (zero: the mean, for the transforms that subtract it), then a crop of the original size
  at a random offset."""
  height, width, channels = image.shape
  padded = jnp.pad(image, ((pad, pad), (pad, pad), (0, 0)))
  y, x = jax.random.randint(key, (2,), 0, 2 * pad + 1)
  return jax.lax.dynamic_slice(padded, (y, x, 0), (height, width, channels))


def example_key(seed, index):
  return jax.random.fold_in(jax.random.key(seed), index)


def train_image(image, key, mean, std, augment):
  """One uint8 [S, S, C] training image → the model's float32 input, its choices drawn from
  `key`."""
  light_key, jitter_key, crop_key = jax.random.split(key, 3)
  offset = 0.0
  if augment.pca_lighting and image.shape[-1] == 3:
    offset = pca_offset(light_key, augment.pca_lighting)
  if augment.color_jitter:
    image = color_jitter(image.astype(jnp.float32) / 255,
                         jitter_factors(jitter_key, augment.color_jitter)) * 255
  image = normalize(image, mean, std, offset)
  if augment.crop == 'pad':
    image = pad_and_crop(image, crop_key, augment.pad)
  return image


def train_images(batch, *, seed, mean, std, augment):
  """The batch's uint8 images → float32, each from its example's key (batch['index'])."""
  return jax.vmap(lambda image, index: train_image(image, example_key(seed, index), mean, std,
                                                   augment))(batch['image'], batch['index'])


def eval_images(batch, *, mean, std):
  """uint8 images of any leading shape ([B, ...] or 10 crops [B, 10, ...]) → the model's
  input."""
  return normalize(batch['image'], mean, std)
