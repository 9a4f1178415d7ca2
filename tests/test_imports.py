"""The house's imports point down: no module of cnn_arch/ or cnn_train/ imports one that imports
it back (at the top or inside a function), the models import nothing of the library, and the
library nothing of configs/ or of the entry points. Read from the source (ast), not by importing."""
import ast
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ('cnn_arch', 'cnn_train')


def modules():
  """{'cnn_train.trainer': path, ...} of both packages."""
  found = {}
  for package in PACKAGES:
    for name in sorted(os.listdir(os.path.join(ROOT, package))):
      if name.endswith('.py'):
        module = package if name == '__init__.py' else f'{package}.{name[:-3]}'
        found[module] = os.path.join(ROOT, package, name)
  return found


def imports_of(path, known):
  """The project's modules (of `known`, or a top-level name such as configs) `path` imports."""
  with open(path) as f:
    tree = ast.parse(f.read(), path)
  names = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
      # from cnn_train import trainer: the module cnn_train.trainer; from cnn_arch import
      # create_model: a name of the package's __init__
      for alias in node.names:
        submodule = f'{node.module}.{alias.name}'
        names.add(submodule if submodule in known else node.module)
  return {name for name in names
          if name in known or name.split('.')[0] in ('configs', 'train', 'eval', 'predict',
                                                      'bench', 'weights', 'lrn')}


def graph():
  known = modules()
  return {module: imports_of(path, known) - {module} for module, path in known.items()}


def find_cycle(edges):
  """One import cycle as a list of modules, or None."""
  state = {}

  def visit(module, path):
    state[module] = 'open'
    for target in sorted(edges.get(module, ())):
      if state.get(target) == 'open':
        return path[path.index(target):] + [target]
      if target not in state:
        cycle = visit(target, path + [target])
        if cycle:
          return cycle
    state[module] = 'done'
    return None

  for module in sorted(edges):
    if module not in state:
      cycle = visit(module, [module])
      if cycle:
        return cycle
  return None


def test_the_cycle_finder_finds_a_cycle():
  assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c', 'a']
  assert find_cycle({'a': {'b', 'c'}, 'b': {'c'}, 'c': set()}) is None


def test_no_module_imports_one_that_imports_it_back():
  edges = graph()
  assert len(edges) > 30  # both packages were read
  assert find_cycle(edges) is None


@pytest.mark.parametrize('package, forbidden', [
    ('cnn_arch', ('cnn_train', 'configs', 'train', 'eval', 'predict', 'bench', 'weights', 'lrn')),
    ('cnn_train', ('configs', 'train', 'eval', 'predict', 'bench', 'weights', 'lrn')),
])
def test_every_import_points_down(package, forbidden):
  wrong = sorted(f'{module} imports {target}' for module, targets in graph().items()
                 if module.split('.')[0] == package
                 for target in targets if target.split('.')[0] in forbidden)
  assert wrong == []


def test_the_old_weights_command_points_to_the_new_one():
  result = subprocess.run([sys.executable, '-m', 'cnn_arch.weights', 'x.pth', '--from=timm'],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert result.returncode == 1
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and 'python weights.py' in lines[0], result.stderr
