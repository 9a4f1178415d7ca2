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
  assert alexnet.get_config('lrn=False,groups=2,initializer=he').model.overrides.to_dict() == {
      'lrn': False, 'groups': 2, 'initializer': 'he'}
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
