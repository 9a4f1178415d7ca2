"""Residual connections in the Inceptions: v4 against Inception-ResNet-v2, v3 against v1

The Inception-v4 paper's Fig. 23-26: Inception-v4 against Inception-ResNet-v2, and Inception-v3
against Inception-ResNet-v1, each pair at a similar cost.

The paper: "the residual version was training much faster" than the plain network of the
same cost, reaching "slightly better" final accuracy (Sec. 5, Fig. 24 and 26).

    python -m cnn_train.sweep sweeps/inception_residual.py:folder:PATH/imagenette2-224
    python -m cnn_train.sweep sweeps/inception_residual.py:imagenette      # TFDS's Imagenette
    python -m cnn_train.sweep sweeps/inception_residual.py                 # Fashion-MNIST

CPU-sized, about an hour of a 2-core CPU: 96×96 images (the smallest the four nets take
without empty maps), batch 64, each pair the same iterations (v3 and Inception-ResNet-v1 400,
v4 and Inception-ResNet-v2 200: ~40 and ~18 images/s in `python bench.py --image-size=96`),
three evaluations. The family's recipe (configs/inception.py) at a tenth of its learning rate,
0.0045 at batch 128 scaled to 64: at the full rate Inception-v4 stays at chance for the whole
budget (docs/zoo.md). Inception-v3 without its auxiliary head, whose 5×5 pool needs 299×299.
"""
# name: (variant of configs/inception.py, iterations of batch 64)
MODELS = {
    'Inception-v3': ('v3,aux=False', 400),
    'Inception-ResNet-v1': ('resnet_v1', 400),
    'Inception-v4': ('v4', 200),
    'Inception-ResNet-v2': ('resnet_v2', 200),
}
SMALL_IMAGES = ('fashion_mnist', 'mnist', 'cifar10')


def get_sweep(data='fashion_mnist'):
  # Grey or tiny images: whole images, no colour augmentation.
  small = {'augment.crop': 'none', 'augment.color_jitter': 0.0} if data in SMALL_IMAGES else {}
  return {
      'variants': {name: (f'configs/inception.py:{variant},dataset={data}', {
          'max_steps': steps, 'eval_every_steps': -(-steps // 3)})
          for name, (variant, steps) in MODELS.items()},
      'overrides': {'image_size': 96, 'augment.resize': 0, 'batch_size': 64, 'lr': 0.0045,
                    'lr_reference_batch': 128, 'log_every_steps': 10,
                    'checkpoint_every_steps': 100, **small},
      'plot': 'error',
  }
