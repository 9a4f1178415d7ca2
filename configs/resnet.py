"""ResNet (Sec. 3.4 of the paper): batch 256, SGD momentum 0.9, weight decay 1e-4, lr 0.1 divided
by 10 when the error plateaus, ~120 epochs (60·10⁴ iterations), crops with mirrors and AlexNet's
colour augmentation.

    python train.py --config=configs/resnet.py:50
    python train.py --config=configs/resnet.py:18,plain=True    # no shortcuts (Sec. 4.1)
"""
from configs import common


def get_config(arg=None):
  arg = common.parse_arg(arg, variant='50', plain=False, v1_5=False, dataset='imagenet2012')
  if int(arg.variant) not in (18, 34, 50, 101, 152):
    raise ValueError(f'configs/resnet.py:{arg.variant}: choose 18, 34, 50, 101 or 152')
  c = common.set_dataset(common.base(), arg.dataset, image_size=224)
  c.model.name = f'resnet{arg.variant}'
  c.model.overrides = {'residual': not arg.plain}
  if arg.v1_5:
    c.model.overrides.stride_in_3x3 = True
  c.augment.update(crop='inception', resize=256, flip=True, pca_lighting=0.1)
  c.batch_size = 256
  c.num_epochs = 120
  c.lr = 0.1
  c.optimizer.weight_decay = 1e-4
  c.schedule.update(name='plateau', factor=0.1, patience=5, max_reductions=3)
  return c
