"""GoogLeNet with and without its auxiliary classifiers

The auxiliary heads (after 4a and 4d, loss weight 0.3 each) exist in training only; the paper
credits them with about 0.5 % of top-1 (Sec. 5).

    python -m cnn_train.sweep sweeps/googlenet_aux.py              # Fashion-MNIST, offline
    python -m cnn_train.sweep sweeps/googlenet_aux.py:cifar10      # CIFAR-10, the same sizes
    python -m cnn_train.sweep sweeps/googlenet_aux.py:imagenette   # the paper's recipe (or
                                                                   # imagenet2012, folder:PATH)

CPU-sized: the images upsampled to 96×96 (maps 48/24/12/6/3, each head pools 6×6 to 1×1),
800 iterations of batch 64 (0.85 epochs of Fashion-MNIST), validation on 2,000 test images.
"""
SMALL_IMAGES = ('fashion_mnist', 'mnist', 'cifar10')


def get_sweep(data='fashion_mnist'):
  small = data in SMALL_IMAGES
  return {
      'config': 'configs/googlenet.py',
      'args': f'dataset={data}',
      'axes': {'aux': [True, False]},
      'overrides': {'image_size': 96, 'augment.crop': 'none', 'augment.color_jitter': 0.0,
                    'batch_size': 64, 'max_steps': 800, 'eval_split': 'test[:2000]',
                    'eval_every_epochs': 0.1, 'log_every_steps': 25} if small else {},
  }
