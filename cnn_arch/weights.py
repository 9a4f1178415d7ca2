"""The weights command moved beside train.py: python weights.py FILE --from=torchvision|timm ..."""
import sys

if __name__ == '__main__':
  sys.exit('error: the weights command is now python weights.py (beside train.py), with the same '
           'arguments: python weights.py FILE --from=torchvision|timm --model=NAME --workdir=DIR')
