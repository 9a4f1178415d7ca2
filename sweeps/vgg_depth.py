"""VGG B against its shallow twin B-5x5: deeper and narrower beats wider

The lecture's "更深还是更宽? … 更深和更窄更好" (deeper or wider? deeper and narrower is better),
as the VGG paper tests it (Sec. 4.1): B against B with each pair of 3×3 convs replaced by one
5×5 conv of the same receptive field, "the top-1 error of the shallow net was measured to be 7%
higher than that of B (on a center crop)". The paper's input (raw pixels minus the mean) and
init (Glorot).

    python -m cnn_train.sweep sweeps/vgg_depth.py              # Fashion-MNIST, offline
    python -m cnn_train.sweep sweeps/vgg_depth.py:cifar10      # CIFAR-10, the same sizes
    python -m cnn_train.sweep sweeps/vgg_depth.py:imagenette   # the paper's recipe (or
                                                               # imagenet2012, folder:PATH)

CPU-sized as vgg_lrn.py: 32×32 inputs (the five pools leave 1×1×512), CIFAR's pad-and-crop and
mirrors, 1,000 iterations of batch 64, validation on 2,000 test images.
"""
SMALL_IMAGES = ('fashion_mnist', 'mnist', 'cifar10')


def get_sweep(data='fashion_mnist'):
  small = {'image_size': 32, 'augment.crop': 'pad', 'augment.pca_lighting': 0.0,
           'batch_size': 64, 'max_steps': 1000, 'eval_split': 'test[:2000]',
           'eval_every_epochs': 0.1, 'log_every_steps': 25}
  return {
      'config': 'configs/vgg.py',
      'args': f'dataset={data}',
      'axes': {'variant': ['B', 'B-5x5']},
      'overrides': small if data in SMALL_IMAGES else {},
  }
