"""LeNet-5 on Fashion-MNIST: the default run (minutes on a CPU, offline from Debian's files).

The input (Sec. II-A): "The values of the input pixels are normalized so that the background
level (white) corresponds to a value of -0.1 and the foreground (black) corresponds to 1.175.
This makes the mean input roughly 0, and the variance roughly 1".

    python train.py --config=configs/lenet5.py
    python train.py --config=configs/lenet5.py:activation=tanh,pooling=avg,dataset=mnist
"""
from configs import common


def get_config(arg=None):
  arg = common.parse_arg(arg, activation='relu', pooling='max', dataset='fashion_mnist')
  c = common.set_dataset(common.base(), arg.dataset)
  c.model.name = 'lenet5'
  c.model.overrides = {'activation': arg.activation, 'pooling': arg.pooling}
  c.image_size = 28
  c.input.transform = 'lenet'  # Sec. II-A: background -0.1, foreground 1.175
  c.augment.flip = True  # clothes and digits alike survive a mirror better than no augmentation
  c.batch_size = 128
  c.num_epochs = 6
  c.lr = 0.05
  c.schedule.patience = 1
  c.checkpoint_every_steps = 2000
  return c
