import os

# Tests run on the CPU; two forced host devices let the multi-device code paths run too.
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
