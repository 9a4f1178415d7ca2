"""AlexNet with and without LRN (Fashion-MNIST at 67×67, 3 epochs of 20k images, CPU-sized)

The VGG paper's claim (Sec. 4.1): local response normalisation does not improve accuracy. On a
CPU, AlexNet runs at 67×67 (its layers shrink to 15/7/3/1 maps, fc6 sees 256 inputs) on
Fashion-MNIST upsampled, with He's initialisation: the paper's N(0, 0.01) stays at chance for
longer than a CPU sweep lasts. On a GPU drop the overrides and use
`args='dataset=imagenette'` (the paper's init and recipe).
"""


def get_sweep():
  return {
      'config': 'configs/alexnet.py',
      'args': 'dataset=fashion_mnist,initializer=he',
      'axes': {'lrn': [True, False]},
      'overrides': {'image_size': 67, 'augment.crop': 'none', 'augment.pca_lighting': 0.0,
                    'train_split': 'train[:20000]', 'batch_size': 64, 'num_epochs': 3,
                    'eval_every_epochs': 0.5, 'schedule.patience': 2},
  }
