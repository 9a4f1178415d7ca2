"""VGG A against A-LRN

The paper's Table 3: A-LRN (A with LRN after its first layer) is no better than A.

    python -m cnn_train.sweep sweeps/vgg_lrn.py              # Fashion-MNIST, offline
    python -m cnn_train.sweep sweeps/vgg_lrn.py:cifar10      # CIFAR-10, the same sizes
    python -m cnn_train.sweep sweeps/vgg_lrn.py:imagenette   # the paper's recipe (or
                                                             # imagenet2012, folder:PATH)

CPU-sized: 32×32 inputs (Fashion-MNIST centred on a 32×32 canvas), where the five pools leave
1×1×512 (fc6 sees 512 inputs), with CIFAR's 4-pixel pad-and-crop and mirrors; 1,000 iterations
of batch 64, validation on 2,000 test images.
"""
SMALL_IMAGES = ('fashion_mnist', 'mnist', 'cifar10')


def get_sweep(data='fashion_mnist'):
  small = data in SMALL_IMAGES
  return {
      'config': 'configs/vgg.py',
      'args': f'dataset={data}',
      'axes': {'variant': ['A', 'A-LRN']},
      'overrides': {'image_size': 32, 'augment.crop': 'pad', 'augment.pca_lighting': 0.0,
                    'batch_size': 64, 'max_steps': 1000, 'eval_split': 'test[:2000]',
                    'eval_every_epochs': 0.1, 'log_every_steps': 25} if small else {},
  }
