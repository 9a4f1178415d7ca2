"""The BatchNorm-era Inceptions: `bn` (Inception-BN / v2), `v3`, `v4`, and `resnet_v1`, `resnet_v2`
(Inception-ResNet, of the v4 paper), the last four at 299×299.

Momentum SGD with the Inception crop; v3 and v4 add label smoothing 0.1 (Sec. 7 of the v3
paper) and their learning rate decays × 0.94 every 2 epochs; the Inception-ResNets train as v4
(the same paper, Sec. 4). (The papers train v3/v4 with
RMSProp on 50-100 replicas; here momentum SGD, the recipe this project implements.) Inputs: v3,
v4 and the Inception-ResNets take [-1, 1], as their released TF-slim models do (v1 was not
released: as its sibling v2); BN-Inception 0-255 pixels minus the mean (its Caffe model).

    python train.py --config=configs/inception.py:v3,aux=False
"""
from configs import common


def get_config(arg=None):
  arg = common.parse_arg(arg, variant='bn', aux=True, dataset='imagenet2012')
  if arg.variant not in ('bn', 'v3', 'v4', 'resnet_v1', 'resnet_v2'):
    raise ValueError(f'configs/inception.py:{arg.variant}: choose bn, v3, v4, resnet_v1 or '
                     'resnet_v2')
  size = 224 if arg.variant == 'bn' else 299
  c = common.set_dataset(common.base(), arg.dataset, image_size=size)
  c.model.name = f'inception_{arg.variant}'
  if arg.variant == 'v3':
    c.model.overrides = {'aux': arg.aux}
    c.aux_loss_weight = 0.4 if arg.aux else 0.0  # TF-slim's weight for the BN-auxiliary head
  c.augment.update(crop='inception', resize=0, flip=True, color_jitter=0.5)
  if arg.variant != 'bn':  # the released v3 and v4 (TF-slim) take [-1, 1]; BN-Inception Caffe's
    c.input.transform = 'symmetric'
  c.batch_size = 128
  c.num_epochs = 100
  c.lr = 0.045
  c.optimizer.weight_decay = 4e-5
  c.label_smoothing = 0.0 if arg.variant == 'bn' else 0.1
  c.schedule.update(name='step', factor=0.94, decay_epochs=tuple(range(2, 100, 2)))
  return c
