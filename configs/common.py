"""What every config shares: the keys, their defaults, per-dataset settings, typed arguments.

A family's config file is `base()` plus a few lines; its variants come from the config-string
argument (`configs/alexnet.py:lrn=False,groups=2`), parsed by `parse_arg`.
"""
import ml_collections

# Per dataset: train and eval split, image size (the paper's input wins where a model needs it).
DATASETS = {
    'imagenet2012': ('train', 'validation', 224),
    'imagenette': ('train', 'validation', 224),
    'cifar10': ('train', 'test', 32),
    'mnist': ('train', 'test', 28),
    'fashion_mnist': ('train', 'test', 28),
}


def base():
  """Every key a config may have, at the AlexNet paper's recipe."""
  c = ml_collections.ConfigDict()
  c.model = ml_collections.ConfigDict({'name': 'alexnet', 'overrides': {}})
  c.dataset = 'imagenet2012'   # a TFDS name, or folder:PATH (PATH/<split>/<class>/<image>)
  c.data_dir = ml_collections.FieldReference(None, field_type=str)  # TFDS data dir
  c.train_split = 'train'
  c.eval_split = 'validation'
  c.image_size = 224
  # The model's input, (p - mean) / std per channel of the 0-255 pixels p, as the family's paper
  # fed it (cnn_train.augment.TRANSFORMS): minus_mean, standardize, symmetric ([-1, 1]) or lenet.
  # mean and std (pixel units) come from the transform and the dataset unless given here.
  c.input = ml_collections.ConfigDict({'transform': 'minus_mean', 'mean': (), 'std': ()})
  c.augment = ml_collections.ConfigDict({
      'crop': 'alexnet',          # 'alexnet' (resize + random crop), 'inception', 'pad', 'none'
      'pad': 4,                   # crop 'pad': zeros around the image_size image, random crop
      'resize': 256,              # shorter side before cropping; 0 = image_size * 256 / 224
      'interpolation': 'bilinear',  # every resize's filter: 'bilinear' or 'bicubic' (timm's)
      'flip': True,
      'color_jitter': 0.0,        # strength of brightness/contrast/saturation jitter; 0 = off
      'pca_lighting': 0.0,        # std of AlexNet's PCA colour noise; 0 = off
      'inception_area_min': 0.08,
      'inception_aspect': (3 / 4, 4 / 3),
  })
  c.batch_size = 128           # global, split over all devices
  c.num_epochs = 90
  c.max_steps = 0              # stop after this many steps (0 = num_epochs)
  c.optimizer = ml_collections.ConfigDict({
      'momentum': 0.9,
      'nesterov': False,
      'weight_decay': 5e-4,
      'decay_all_params': False,  # False: weights (kernels) only; True: biases and BN too
  })
  c.lr = 0.01
  c.lr_reference_batch = 0     # > 0: linear scaling, lr × batch_size / lr_reference_batch
  c.schedule = ml_collections.ConfigDict({
      'name': 'plateau',          # 'plateau', 'step', 'cosine' or 'constant'
      # plateau: ×factor after `patience` evals without an improvement of `min_delta`
      'factor': 0.1,
      'patience': 1,
      'max_reductions': 3,
      'monitor': 'val_error',     # 'val_error' (1 - top-1) or 'val_loss'
      'min_delta': 1e-4,
      'decay_epochs': (30, 60, 80),  # step: ×factor at each of these epochs
      'decay_steps': (),          # step: ×factor at each of these iterations (wins if set)
      'warmup_steps': 0,          # step, plateau, constant: N iterations at lr × warmup_factor
      'warmup_factor': 0.1,
      'warmup_epochs': 0.0,       # cosine: linear warm-up
  })
  c.aux_loss_weight = 0.0      # GoogLeNet: 0.3 on each auxiliary classifier, training only
  c.label_smoothing = 0.0
  c.model_axis = 1             # devices per model replica: AlexNet's towers=2 splits over 2
  c.dtype = 'float32'          # compute dtype; 'bfloat16' on GPUs (parameters stay float32)
  c.seed = 0
  c.init_from = ''             # a run directory: start from its weights (fine-tuning)
  c.eval_every_epochs = 1.0   # fractions allowed: 0.25 evaluates four times an epoch
  c.eval_every_steps = 0      # > 0: evaluate every N iterations instead
  c.checkpoint_every_steps = 1000
  c.keep_checkpoints = 3       # the latest N, plus the best by the monitored metric
  c.log_every_steps = 50
  c.skip_nonfinite_steps = False  # False: stop at a NaN/Inf loss; True: skip such steps
  return c


def set_dataset(config, dataset, image_size=None):
  """Point `config` at `dataset`, with its splits and (unless the model fixes it) image size."""
  config.dataset = dataset
  if dataset.startswith('folder:'):
    config.train_split, config.eval_split = 'train', 'val'
    size = 224
  elif dataset in DATASETS:
    config.train_split, config.eval_split, size = DATASETS[dataset]
  else:
    raise ValueError(f'dataset={dataset!r}: use one of {", ".join(DATASETS)} or folder:PATH')
  config.image_size = image_size or size
  if config.image_size <= 32:  # MNIST/CIFAR-sized images: no ImageNet crops
    config.augment.crop, config.augment.resize = 'none', 0
  return config


def parse_arg(arg, **defaults):
  """'lrn=False,groups=2' → ConfigDict, each value typed like its default; unknown keys fail.

  A bare word without '=' sets the key `variant` (so `configs/vgg.py:D` works) when there is one.
  """
  result = ml_collections.ConfigDict(defaults)
  for item in filter(None, (arg or '').split(',')):
    key, sep, value = item.partition('=')
    if not sep:
      key, value = 'variant', item
    if key not in defaults:
      raise ValueError(f'unknown config argument {key!r}; this config takes '
                       f'{", ".join(sorted(defaults))}')
    kind = type(defaults[key])
    if kind is bool:
      if value.lower() not in ('true', 'false', '1', '0'):
        raise ValueError(f'config argument {key}={value!r} must be True or False')
      result[key] = value.lower() in ('true', '1')
    else:
      try:
        result[key] = kind(value)
      except ValueError:
        raise ValueError(f'config argument {key}={value!r} must be of type {kind.__name__}') from None
  return result
