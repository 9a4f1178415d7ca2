"""The training library: input pipeline, optimiser and schedules, steps, sharding, checkpoints."""
import os

from cnn_train import quiet_tensorflow

# TensorFlow (tf.data, TFDS, clu's TensorBoard writer) prints C++ start-up lines at INFO level
# (CPU features, oneDNN, absl::InitializeLog) unless this is set before its first import; every
# module of the library may be that first import. A user's own setting wins. The lines absl
# prints before it applies are filtered from TensorFlow's first import (quiet_tensorflow).
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
quiet_tensorflow.install()
