"""The library's files under $XDG_CACHE_HOME/cnn-zoo-jax (~/.cache by default): JSON, read
leniently and written whole."""
import json
import os


def path(*parts):
  base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
  return os.path.join(base, 'cnn-zoo-jax', *parts)


def read_json(file):
  """The file's JSON object; {} when it is missing, unreadable or not an object."""
  try:
    with open(file) as f:
      data = json.load(f)
  except (OSError, ValueError):
    return {}
  return data if isinstance(data, dict) else {}


def write_json(file, data, **dump_args):
  """Written whole, then renamed: other processes (of this host or others sharing the folder)
  may be reading it. Raises OSError (a read-only home, a full disk)."""
  os.makedirs(os.path.dirname(file), exist_ok=True)
  temporary = f'{file}.{os.getpid()}.tmp'
  with open(temporary, 'w') as f:
    json.dump(data, f, **dump_args)
  os.replace(temporary, file)
