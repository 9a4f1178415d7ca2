"""VGG A against A-LRN (CIFAR-10 at 32×32, CPU-sized)

The paper's Table 3: A-LRN is no better than A. At 32×32 the five pools leave a 1×1×512 map
(fc6 sees 512 inputs); on a GPU drop the overrides and use `args='...,dataset=imagenette'`.
"""


def get_sweep():
  return {
      'config': 'configs/vgg.py',
      'args': 'dataset=cifar10',
      'axes': {'variant': ['A', 'A-LRN']},
      'overrides': {'batch_size': 64, 'max_steps': 500, 'eval_every_epochs': 0.2},
  }
