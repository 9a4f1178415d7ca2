"""AlexNet in one tower or the paper's two

groups=2 splits conv2, conv4 and conv5 into two towers as on the paper's two GPUs (60.97 M
instead of 62.38 M parameters at 227×227); the towers then see half of each other's maps.

    python -m cnn_train.sweep sweeps/alexnet_towers.py             # Fashion-MNIST, offline
    python -m cnn_train.sweep sweeps/alexnet_towers.py:cifar10     # CIFAR-10, the same sizes
    python -m cnn_train.sweep sweeps/alexnet_towers.py:imagenette  # the paper's recipe (or
                                                                   # imagenet2012, folder:PATH)

Sizes and rate as in alexnet_lrn.py: 67×67 on Fashion-MNIST or CIFAR-10 at 0.0025 per iteration
of 64, and Caffe's biases of 0.1 where the paper has 1 (`positive_bias=0.1`): with the paper's 1
the two towers stay at chance there (docs/sweeps.md). The paper's recipe on photos.
"""
SMALL_IMAGES = ('fashion_mnist', 'mnist', 'cifar10')


def get_sweep(data='fashion_mnist'):
  small = data in SMALL_IMAGES
  return {
      'config': 'configs/alexnet.py',
      'args': f'dataset={data}' + (',positive_bias=0.1' if small else ''),
      'axes': {'groups': [1, 2]},
      'overrides': {'image_size': 67, 'augment.crop': 'none', 'augment.pca_lighting': 0.0,
                    'train_split': 'train[:20000]', 'batch_size': 64, 'lr': 0.0025,
                    'num_epochs': 3, 'eval_every_epochs': 0.5,
                    'schedule.patience': 2} if small else {},
  }
