"""ResNet-18 against its plain twin (CIFAR-10 at 32×32, CPU-sized)

The lecture's degradation argument: the same 18 layers without shortcuts train worse.
"""


def get_sweep():
  return {
      'config': 'configs/resnet.py',
      'args': '18,dataset=cifar10',
      'axes': {'plain': [False, True]},
      'overrides': {'batch_size': 64, 'lr': 0.05, 'max_steps': 500, 'eval_every_epochs': 0.2},
  }
