"""The model zoo on real photos: every family's recipe for about 20 minutes of a 2-core CPU

    python -m cnn_train.sweep sweeps/zoo.py:folder:PATH/imagenette2-224  # docs/zoo.md
    python -m cnn_train.sweep sweeps/zoo.py:imagenette                    # TFDS's Imagenette
    python -m cnn_train.sweep sweeps/zoo.py                               # Fashion-MNIST, offline

Each model's own config (its paper's recipe: initialisation, optimizer, schedule, augmentation)
at 128×128, batch 64 with the recipe's learning rate scaled linearly from its batch
(lr_reference_batch), for the iterations this machine trains in about 20 minutes: 1,100 s at
the images/s of `python bench.py --model=M --batch=32 --image-size=128`. Three
evaluations per run. The summary plots top-1 against training images/s, one point per model.
Inception-v3 runs without its auxiliary head, whose 5×5 pool needs the 299×299 input.
"""
# name: (config file and variant, the recipe's batch, iterations of batch 64[, overrides])
MODELS = {
    # AlexNet's biases of 1 make fc6's and fc7's outputs about 1 for every image, so fc8's
    # gradient shifts each class's logit for every image at once, a direction in which the loss
    # curves by p(1 − p) × |fc7|² ≈ 0.09 × 4,096: with 10 classes a hundred times more than with
    # ImageNet's 1,000 (p ≈ 0.001). The paper's rate (0.005 at batch 64) is past the edge there:
    # the loss rises from 2.7 to 19 in 9 iterations and the network settles on the class prior
    # (2.303) for good. A tenth of the rate for the first 100 iterations lets it through.
    'AlexNet': ('configs/alexnet.py:', 128, 920,             # 59.6 images/s at batch 32
                {'schedule.warmup_steps': 100, 'schedule.warmup_factor': 0.1}),
    'VGG-A': ('configs/vgg.py:A,', 256, 140),               # 9.1
    'NiN': ('configs/nin.py:', 128, 700),                   # 44.8
    'GoogLeNet': ('configs/googlenet.py:', 128, 350),       # 22.5
    'Inception-BN': ('configs/inception.py:bn,', 128, 470),  # 30.5
    'Inception-v3': ('configs/inception.py:v3,aux=False,', 128, 240),  # 15.7
    'Inception-v4': ('configs/inception.py:v4,', 128, 155),  # 10.0
    'ResNet-18': ('configs/resnet.py:18,', 256, 480),        # 28.1
    'ResNet-50': ('configs/resnet.py:50,', 256, 220),        # 12.9
    # Inception-v4's recipe stays at chance for the whole budget, its training loss rising in
    # the first 50 iterations (2.6 → 3.0): at init its kernels' gradients are up to 240× the
    # kernels (BatchNorm in training mode), and the recipe's rate overshoots.
    'Inception-v4, lr 0.0045': ('configs/inception.py:v4,', 128, 155, {'lr': 0.0045}),
    'Inception-v4, warm-up': ('configs/inception.py:v4,', 128, 155, {
        'schedule.warmup_steps': 50, 'schedule.warmup_factor': 0.1}),
}
SMALL_IMAGES = ('fashion_mnist', 'mnist', 'cifar10')


def get_sweep(data='fashion_mnist'):
  # Grey or tiny images: whole images, no colour augmentation.
  small = {'augment.crop': 'none', 'augment.color_jitter': 0.0,
           'augment.pca_lighting': 0.0} if data in SMALL_IMAGES else {}
  return {
      'variants': {name: (f'{config}dataset={data}', {
          'lr_reference_batch': batch, 'max_steps': steps, 'eval_every_steps': -(-steps // 3),
          **small, **(own[0] if own else {})})
          for name, (config, batch, steps, *own) in MODELS.items()},
      'overrides': {'image_size': 128, 'augment.resize': 0, 'batch_size': 64,
                    'log_every_steps': 10, 'checkpoint_every_steps': 100},
      'plot': 'zoo',
  }
