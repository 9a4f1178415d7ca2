"""Network in Network at 224×224: AlexNet's recipe (the paper trains it "as AlexNet"), its input
too: 0-255 pixels minus the mean, as the authors' Caffe model takes them.

    python train.py --config=configs/nin.py:dataset=imagenette
"""
from configs import common


def get_config(arg=None):
  arg = common.parse_arg(arg, dataset='imagenet2012')
  c = common.set_dataset(common.base(), arg.dataset, image_size=224)
  c.model.name = 'nin'
  c.augment.update(crop='alexnet', resize=256, flip=True)
  c.batch_size = 128
  c.lr = 0.01
  c.schedule.update(name='plateau', factor=0.1, patience=5, max_reductions=3)
  return c
