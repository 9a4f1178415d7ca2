"""The float work of preprocessing, on the devices inside the jitted steps: uint8 batches →
normalised float32, with AlexNet's PCA lighting and colour jitter (training) and ResNet's CIFAR
pad-and-crop.

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


def stats(dataset):
  """(mean, std) per channel of `dataset`'s pixels on the [0, 1] scale, float32 arrays."""
  mean, std = STATS['folder' if dataset.startswith('folder:') else dataset]
  return np.asarray(mean, np.float32), np.asarray(std, np.float32)


def normalize(images, dataset, offset=0.0):
  """0..255 pixels (uint8 or float) → (x / 255 + offset - mean) / std, one multiply and one add."""
  mean, std = stats(dataset)
  return images.astype(jnp.float32) * (1 / (255 * std)) + (offset - mean) / std


def pca_offset(key, std):
  """AlexNet's lighting noise for one image: the RGB offset (on the [0, 1] scale)
  EIGVEC @ (alpha * EIGVAL) with alpha ~ N(0, std²) per principal component."""
  alpha = std * jax.random.normal(key, (3,))
  return jnp.asarray(EIGVEC, jnp.float32) @ (alpha * jnp.asarray(EIGVAL, jnp.float32))


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
  """ResNet's CIFAR augmentation (Sec. 4.2): `pad` pixels of zeros on each side of the
  normalised image (zero: the mean), then a crop of the original size at a random offset."""
  height, width, channels = image.shape
  padded = jnp.pad(image, ((pad, pad), (pad, pad), (0, 0)))
  y, x = jax.random.randint(key, (2,), 0, 2 * pad + 1)
  return jax.lax.dynamic_slice(padded, (y, x, 0), (height, width, channels))


def example_key(seed, index):
  return jax.random.fold_in(jax.random.key(seed), index)


def train_image(image, key, dataset, augment):
  """One uint8 [S, S, C] training image → normalised float32, its choices drawn from `key`."""
  light_key, jitter_key, crop_key = jax.random.split(key, 3)
  offset = 0.0
  if augment.pca_lighting and image.shape[-1] == 3:
    offset = pca_offset(light_key, augment.pca_lighting)
  if augment.color_jitter:
    image = color_jitter(image.astype(jnp.float32) / 255,
                         jitter_factors(jitter_key, augment.color_jitter)) * 255
  image = normalize(image, dataset, offset)
  if augment.crop == 'pad':
    image = pad_and_crop(image, crop_key, augment.pad)
  return image


def train_images(batch, *, seed, dataset, augment):
  """The batch's uint8 images → float32, each from its example's key (batch['index'])."""
  return jax.vmap(lambda image, index: train_image(image, example_key(seed, index), dataset,
                                                   augment))(batch['image'], batch['index'])


def eval_images(batch, *, dataset):
  """uint8 images of any leading shape ([B, ...] or 10 crops [B, 10, ...]) → normalised."""
  return normalize(batch['image'], dataset)
