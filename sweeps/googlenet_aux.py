"""GoogLeNet with and without its auxiliary classifiers (CIFAR-10 upsampled to 96×96, CPU-sized)

The auxiliary heads (after 4a and 4d, loss weight 0.3) exist in training only. At 96×96 the
maps are 48/24/12/6/3 and each head pools 6×6 to 1×1.
"""


def get_sweep():
  return {
      'config': 'configs/googlenet.py',
      'args': 'dataset=cifar10',
      'axes': {'aux': [True, False]},
      'overrides': {'image_size': 96, 'augment.crop': 'none', 'augment.color_jitter': 0.0,
                    'batch_size': 64, 'max_steps': 500, 'eval_every_epochs': 0.2},
  }
