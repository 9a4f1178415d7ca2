"""AlexNet with and without LRN

The VGG paper's claim (Sec. 4.1): local response normalisation does not improve accuracy.

    python -m cnn_train.sweep sweeps/alexnet_lrn.py              # Fashion-MNIST, offline
    python -m cnn_train.sweep sweeps/alexnet_lrn.py:cifar10      # CIFAR-10, the same sizes
    python -m cnn_train.sweep sweeps/alexnet_lrn.py:imagenette   # the paper's recipe (or
                                                                 # imagenet2012, folder:PATH)

CPU-sized (Fashion-MNIST or CIFAR-10): AlexNet at 67×67, its smallest input (maps 15/7/3/1, fc6
sees 256 inputs), 3 epochs of 20k images, the paper's N(0, 0.01) init on the paper's input (raw
pixels minus the mean, on which LRN's divisor varies) at 0.0025 per iteration of 64: with 10
classes the paper's rate (0.01 at 128, 0.005 at 64) diverges in the first 10 iterations and
leaves the network at chance (why: sweeps/zoo.py, AlexNet). Photos (imagenette, ImageNet, a
folder): the paper's recipe at 227×227, for GPUs. The summary gives each LRN layer's divisor
spread.
"""
SMALL_IMAGES = ('fashion_mnist', 'mnist', 'cifar10')


def get_sweep(data='fashion_mnist'):
  small = data in SMALL_IMAGES
  return {
      'config': 'configs/alexnet.py',
      'args': f'dataset={data}',
      'axes': {'lrn': [True, False]},
      'overrides': {'image_size': 67, 'augment.crop': 'none', 'augment.pca_lighting': 0.0,
                    'train_split': 'train[:20000]', 'batch_size': 64, 'lr': 0.0025,
                    'num_epochs': 3, 'eval_every_epochs': 0.5,
                    'schedule.patience': 2} if small else {},
  }
