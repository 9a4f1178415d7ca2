"""AlexNet in one tower or the paper's two (Fashion-MNIST at 67×67, 3 epochs of 20k images, CPU-sized)

groups=2 splits conv2, conv4 and conv5 into two towers as on the paper's two GPUs (60.97 M
instead of 62.38 M parameters at 227×227). He's initialisation, as in alexnet_lrn.py.
"""


def get_sweep():
  return {
      'config': 'configs/alexnet.py',
      'args': 'dataset=fashion_mnist,initializer=he',
      'axes': {'groups': [1, 2]},
      'overrides': {'image_size': 67, 'augment.crop': 'none', 'augment.pca_lighting': 0.0,
                    'train_split': 'train[:20000]', 'batch_size': 64, 'num_epochs': 3,
                    'eval_every_epochs': 0.5, 'schedule.patience': 2},
  }
