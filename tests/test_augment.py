"""The float augmentation on the device (cnn_train/augment.py): the formulas the host-side TF
code followed (AlexNet's PCA lighting, tf.image's colour jitter, ResNet's pad-and-crop), drawn per
example from (seed, index) so that an example's augmentation does not depend on its batch."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from cnn_train import augment


def augment_config(**changes):
  aug = dict(crop='alexnet', flip=True, color_jitter=0.0, pca_lighting=0.0, pad=4)
  return ml_collections.ConfigDict(aug | changes)


def keys(n, seed=7):
  return jax.vmap(lambda i: augment.example_key(seed, i))(jnp.arange(n, dtype=jnp.uint32))


def test_pca_lighting_noise_has_the_given_std():
  offsets = np.asarray(jax.vmap(lambda k: augment.pca_offset(k, 0.1))(keys(4000))) / 255
  alpha = offsets @ np.asarray(augment.EIGVEC) / np.asarray(augment.EIGVAL)  # on the eigenvectors
  np.testing.assert_allclose(alpha.std(axis=0), 0.1, rtol=0.1)
  np.testing.assert_allclose(alpha.mean(axis=0), 0, atol=0.01)


@pytest.mark.parametrize('strength', [0.5, 1.0, 3.0])
def test_colour_jitter_factors_cover_tf_image_ranges(strength):
  """stateless_random_brightness(max_delta=0.4s), random_contrast and random_saturation
  (lower=max(0, 1 - 0.4s), upper=1 + 0.4s): uniform over those ranges."""
  s = 0.4 * strength
  brightness, contrast, saturation = (np.asarray(f) for f in jax.vmap(
      lambda k: augment.jitter_factors(k, strength))(keys(4000)))
  for values, low, high in ((brightness, -s, s), (contrast, max(0, 1 - s), 1 + s),
                            (saturation, max(0, 1 - s), 1 + s)):
    assert low <= values.min() < low + 0.01 * (high - low) and high - 0.01 * (high - low) < (
        values.max()) <= high
    np.testing.assert_allclose(values.mean(), (low + high) / 2, atol=0.02 * (high - low))
    np.testing.assert_allclose(values.std(), (high - low) / np.sqrt(12), rtol=0.05)
  assert abs(np.corrcoef(contrast, saturation)[0, 1]) < 0.05  # independent draws


def test_colour_jitter_computes_tf_images_adjustments():
  rng = np.random.default_rng(0)
  image = rng.random((9, 11, 3)).astype(np.float32)
  for brightness, contrast, saturation in ((0.1, 1.3, 0.7), (-0.2, 0.6, 1.4), (0.0, 1.0, 0.0)):
    theirs = tf.image.adjust_brightness(image, brightness)
    theirs = tf.image.adjust_contrast(theirs, contrast)
    theirs = tf.clip_by_value(tf.image.adjust_saturation(theirs, saturation), 0.0, 1.0)
    ours = augment.color_jitter(jnp.asarray(image), (brightness, contrast, saturation))
    np.testing.assert_allclose(ours, theirs.numpy(), atol=2e-5)


# torchvision's ImageNet statistics on the [0, 1] scale, as its documentation gives them.
IMAGENET_MEAN, IMAGENET_STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


@pytest.mark.parametrize('config, dataset, expected', [
    # AlexNet Sec. 2, VGG Sec. 2.1, GoogLeNet/NiN (Caffe), ResNet Sec. 3.4: 0-255 minus the mean
    ('alexnet', '', lambda p: p - 255 * IMAGENET_MEAN),
    ('vgg', 'A', lambda p: p - 255 * IMAGENET_MEAN),
    ('nin', '', lambda p: p - 255 * IMAGENET_MEAN),
    ('googlenet', '', lambda p: p - 255 * IMAGENET_MEAN),
    ('inception', 'bn', lambda p: p - 255 * IMAGENET_MEAN),
    ('resnet', '50', lambda p: p - 255 * IMAGENET_MEAN),
    ('resnet', '56', lambda p: p - 255 * np.array([0.4914, 0.4822, 0.4465])),  # CIFAR-10's mean
    ('alexnet', 'dataset=imagenette', lambda p: p - 255 * IMAGENET_MEAN),
    # Inception-v3/v4 as released: [-1, 1]
    ('inception', 'v3', lambda p: p / 127.5 - 1),
    ('inception', 'v4', lambda p: p / 127.5 - 1),
    # LeNet-5 Sec. II-A: background (0) -0.1, foreground (255) 1.175
    ('lenet5', '', lambda p: -0.1 + p / 255 * 1.275),
    ('lenet5', 'dataset=mnist', lambda p: -0.1 + p / 255 * 1.275),
], ids=lambda v: v if isinstance(v, str) else '')
def test_each_family_feeds_pixels_as_its_paper(config, dataset, expected):
  import importlib
  config = importlib.import_module(f'configs.{config}').get_config(dataset or None)
  mean, std = augment.input_stats(config)
  pixels = np.array([0, 1, 127, 128, 255], np.uint8)[:, None].repeat(len(mean), axis=1)
  ours = augment.eval_images({'image': pixels}, mean=mean, std=std)
  np.testing.assert_allclose(ours, expected(pixels.astype(np.float64)), rtol=1e-5, atol=1e-4)
  assert ours.dtype == jnp.float32


def test_a_run_from_before_config_input_is_standardised_as_it_was_trained():
  """config.json of a run trained before issue 27 has no `input`: (p / 255 - mean) / std."""
  old = ml_collections.ConfigDict({'dataset': 'imagenet2012'})
  mean, std = augment.input_stats(old)
  pixels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(3, axis=-1)
  ours = augment.eval_images({'image': pixels}, mean=mean, std=std)
  np.testing.assert_allclose(ours, (pixels / 255 - IMAGENET_MEAN) / IMAGENET_STD, rtol=1e-5,
                             atol=1e-5)


def test_the_fashion_mnist_mean_is_its_training_splits(fashion_train_images):
  """STATS' Fashion-MNIST mean and std against the training images (Debian's files)."""
  images = fashion_train_images
  np.testing.assert_allclose(images.mean() / 255, augment.STATS['fashion_mnist'][0], atol=5e-4)
  np.testing.assert_allclose(images.std() / 255, augment.STATS['fashion_mnist'][1], atol=5e-4)


STANDARDIZE = (255 * IMAGENET_MEAN, 255 * IMAGENET_STD)  # the tests below: torchvision's input


def train(images, index, seed=0, **changes):
  batch = {'image': images, 'index': np.asarray(index, np.uint32)}
  return np.asarray(jax.jit(lambda b: augment.train_images(
      b, seed=seed, mean=STANDARDIZE[0], std=STANDARDIZE[1],
      augment=augment_config(**changes)))(batch))


def test_an_examples_augmentation_depends_on_seed_and_index_only():
  rng = np.random.default_rng(1)
  images = rng.integers(0, 256, (4, 8, 8, 3), np.uint8)
  aug = dict(pca_lighting=0.1, color_jitter=0.4)
  out = train(images, [10, 11, 12, 13], **aug)
  # The same example with the same index, alone or elsewhere in another batch: the same output.
  np.testing.assert_array_equal(train(images[2:3], [12], **aug), out[2:3])
  np.testing.assert_array_equal(train(images[::-1], [13, 12, 11, 10], **aug), out[::-1])
  assert not np.allclose(train(images[2:3], [99], **aug), out[2:3])  # another index
  assert not np.allclose(train(images[2:3], [12], seed=1, **aug), out[2:3])  # another seed


def test_lighting_adds_one_offset_per_image_and_nothing_else():
  images = np.random.default_rng(2).integers(0, 256, (4, 8, 8, 3), np.uint8)
  plain, lit = train(images, range(4)), train(images, range(4), pca_lighting=0.1)
  np.testing.assert_allclose(plain, (images / 255 - IMAGENET_MEAN) / IMAGENET_STD, rtol=1e-5,
                             atol=1e-5)
  offset = ((lit - plain) * IMAGENET_STD).reshape(4, -1, 3)  # back on the [0, 1] scale
  np.testing.assert_allclose(offset, np.broadcast_to(offset[:, :1], offset.shape), atol=1e-5)
  assert np.abs(offset[:, 0]).max() > 1e-3 and len({o.tobytes() for o in offset[:, 0]}) == 4


def test_pad_crop_is_a_shift_with_zeros_of_the_normalised_image():
  """ResNet's CIFAR augmentation: 4 pixels of zeros (the mean) around the normalised 32×32
  image, a random 32×32 crop: every output is the image shifted by at most 4 pixels."""
  image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), np.uint8)
  outs = train(np.repeat(image[None], 40, axis=0), range(40), crop='pad')
  padded = np.pad(np.asarray(augment.normalize(image, *STANDARDIZE)), ((4, 4), (4, 4), (0, 0)))
  shifts = set()
  for out in outs:
    match = [(dy, dx) for dy in range(9) for dx in range(9)
             if np.allclose(padded[dy:dy + 32, dx:dx + 32], out, atol=1e-5)]
    assert len(match) == 1
    shifts.add(match[0])
  assert len(shifts) > 10  # random positions, not one
