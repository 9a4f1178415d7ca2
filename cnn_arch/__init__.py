"""The model zoo: every network of the lecture as a pure Flax Linen module (NHWC).

    model = cnn_arch.create_model('alexnet', groups=2)
    variables = model.init(key, jnp.zeros((1, *cnn_arch.input_shape('alexnet'))))
    logits = model.apply(variables, images, train=False)

    model, variables = cnn_arch.from_torchvision('resnet50', state_dict)  # torchvision's weights
    model, variables = cnn_arch.from_timm('inception_resnet_v2', state_dict)  # timm's
"""
from cnn_arch.registry import (ALIASES, EmptyFeatureMap, create_model, input_shape, list_models,
                               no_empty_maps, register, smallest_input_size)
from cnn_arch.timm_weights import from_timm
from cnn_arch.torchvision_weights import from_torchvision

__all__ = ['ALIASES', 'EmptyFeatureMap', 'create_model', 'from_timm', 'from_torchvision',
           'input_shape', 'list_models', 'no_empty_maps', 'register', 'smallest_input_size']
