"""The top classes of image files, through a run's own evaluation transform (predict.py)."""
import os

import jax
import numpy as np
import tensorflow as tf

from cnn_train import augment, folder_listing, image_ops, runs, sources, train_state

IMAGENET_CLASSES = os.path.join(os.path.dirname(__file__), 'imagenet_classes.txt')
BATCH = 32  # images per forward pass


def imagenet_classes():
  """{WordNet ID: name} of ImageNet-1k's classes, in label order."""
  with open(IMAGENET_CLASSES) as f:
    return dict(line.rstrip('\n').split(' ', 1) for line in f if not line.startswith('#'))


def class_names(config):
  """The run's class names in label order: ImageNet's names, a folder dataset's class folders
  (with ImageNet's name after a WordNet ID, as in Imagenette), or the TFDS dataset's labels."""
  if config.dataset == 'imagenet2012':
    return list(imagenet_classes().values())
  if config.dataset.startswith('folder:'):
    names = imagenet_classes()
    folders = folder_listing.classes(config.dataset.removeprefix('folder:'), config.train_split)
    return [f'{c} {names[c]}' if c in names else c for c in folders]
  import tensorflow_datasets as tfds
  return tfds.builder(config.dataset, data_dir=config.data_dir).info.features['label'].names


def load_image(path, config):
  try:
    return image_ops.eval_image(tf.io.read_file(path), config,
                               sources.image_channels(config)).numpy()
  except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError) as e:
    what = 'no such file' if isinstance(e, tf.errors.NotFoundError) else 'not a JPEG or PNG image'
    raise ValueError(f'{path}: {what}') from None


def predict(workdir, paths, checkpoint='latest', top=5):
  """(step, [(path, [(class name, probability)] × top)]) for the image files `paths`."""
  config, variables, step = runs.load_variables(workdir, checkpoint)
  names = class_names(config)
  model = train_state.create_model(config, len(names))
  mean, std = augment.input_stats(config)
  apply = jax.jit(lambda v, x: jax.nn.softmax(model.apply(
      v, augment.normalize(x, mean, std), train=False).astype(np.float32)))
  results = []
  for start in range(0, len(paths), BATCH):
    chunk = paths[start:start + BATCH]
    images = np.stack([load_image(path, config) for path in chunk])
    for path, p in zip(chunk, np.asarray(apply(variables, images))):
      best = np.argsort(-p)[:top]
      results.append((path, [(names[i], float(p[i])) for i in best]))
  return step, results
