"""Degradation (ResNet paper, Fig. 1 and 6): plain-20 and plain-56 against ResNet-20 and ResNet-56

The lecture's question, "does adding layers help?": without shortcuts the deeper net trains
worse (higher training error, not overfitting); with them it trains better.

    python -m cnn_train.sweep sweeps/resnet_degradation.py          # Fashion-MNIST, offline
    python -m cnn_train.sweep sweeps/resnet_degradation.py:cifar10  # the paper's 64k × 128

CPU-sized: the paper's CIFAR networks on Fashion-MNIST centred on 32×32, 1,000 iterations of
batch 64 with the paper's step schedule scaled down (÷10 at half and three quarters),
validation on 2,000 test images.
"""


def get_sweep(data='fashion_mnist'):
  if data not in ('fashion_mnist', 'mnist', 'cifar10'):
    raise ValueError(f'sweeps/resnet_degradation.py:{data}: the CIFAR ResNets take 32×32 '
                     'images; choose fashion_mnist, mnist or cifar10')
  return {
      'config': 'configs/resnet.py',
      'args': f'dataset={data}',
      'axes': {'variant': ['20', '56'], 'plain': [True, False]},
      'overrides': {'batch_size': 64, 'max_steps': 1000, 'schedule.decay_steps': (500, 750),
                    'eval_split': 'test[:2000]', 'eval_every_epochs': 0.1,
                    'log_every_steps': 25} if data != 'cifar10' else {},
      'plot': 'error',
  }
