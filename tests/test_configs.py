"""Every config file loads, with the variants the README shows, and names a real model."""
import importlib

import pytest

import cnn_arch
from configs import common

VARIANTS = [
    ('lenet5', None), ('lenet5', 'activation=tanh,pooling=avg,dataset=mnist'),
    ('alexnet', None), ('alexnet', 'lrn=False'), ('alexnet', 'groups=2'),
    ('alexnet', 'dataset=imagenette'), ('alexnet', 'lrn=False,groups=2,dataset=folder:/x'),
    ('vgg', None), ('vgg', 'A-LRN'), ('vgg', 'C,batch_norm=True'), ('nin', None),
    ('googlenet', None), ('googlenet', 'aux=False'), ('inception', 'bn'),
    ('inception', 'v3,aux=False'), ('inception', 'v4'), ('resnet', '50'),
    ('resnet', '18,plain=True'), ('resnet', '101,v1_5=True,dataset=cifar10'),
    ('resnet', '20'), ('resnet', '56,plain=True'), ('resnet', '110'),
    ('resnet', '20,dataset=fashion_mnist'),
]


@pytest.mark.parametrize('family,arg', VARIANTS)
def test_config_variants(family, arg):
  config = importlib.import_module(f'configs.{family}').get_config(arg)
  assert config.model.name in cnn_arch.list_models()
  assert set(config) == set(common.base())  # a variant overrides keys, never adds any
  cnn_arch.create_model(config.model.name, 10, **config.model.overrides)
  if config.dataset in ('imagenet2012', 'imagenette') or config.dataset.startswith('folder:'):
    assert config.image_size == cnn_arch.input_shape(config.model.name)[0]


def test_variant_values_reach_the_model():
  from configs import alexnet, googlenet, resnet, vgg
  assert alexnet.get_config('lrn=False,groups=2,initializer=he,positive_bias=0.1'
                            ).model.overrides.to_dict() == {
      'lrn': False, 'groups': 2, 'initializer': 'he', 'positive_bias': 0.1}
  towers = alexnet.get_config('towers=2')
  assert towers.model.overrides.groups == 2 and towers.model_axis == 2
  assert alexnet.get_config().model_axis == 1
  assert vgg.get_config('A-LRN').model.name == 'vgg_a_lrn'
  assert resnet.get_config('18,plain=True').model.overrides.residual is False
  assert googlenet.get_config('aux=False').aux_loss_weight == 0.0
  assert googlenet.get_config().aux_loss_weight == 0.3


@pytest.mark.parametrize('arg,message', [
    ('gpus=2', "unknown config argument 'gpus'"),
    ('towers=3', 'towers=3; 1 .* or 2'),
    ('groups=two', 'groups=.two. must be of type int'),
    ('lrn=maybe', 'must be True or False'),
    ('dataset=imagenet', "dataset='imagenet'"),
])
def test_bad_config_arguments(arg, message):
  from configs import alexnet
  with pytest.raises(ValueError, match=message):
    alexnet.get_config(arg)


def test_cifar_resnet_recipe_is_the_papers():
  """Sec. 4.2: lr 0.1, ÷10 at 32k and 48k iterations, 64k in all, batch 128, wd 1e-4; ResNet-110
  warms up at 0.01 for 400 iterations."""
  from cnn_train import optim
  from configs import resnet
  c = resnet.get_config('56')
  assert (c.dataset, c.image_size, c.batch_size, c.max_steps) == ('cifar10', 32, 128, 64_000)
  assert (c.optimizer.momentum, c.optimizer.weight_decay) == (0.9, 1e-4)
  assert (c.augment.crop, c.augment.pad, c.augment.flip) == ('pad', 4, True)
  lr = optim.create_schedule(c, 390, c.max_steps)
  assert [float(lr(s)) for s in (0, 31_999, 32_000, 47_999, 48_000, 63_999)] == pytest.approx(
      [0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
  lr = optim.create_schedule(resnet.get_config('110'), 390, 64_000)
  assert [float(lr(s)) for s in (0, 399, 400, 32_000, 48_000)] == pytest.approx(
      [0.01, 0.01, 0.1, 0.01, 0.001])
