"""The images of an ImageFolder tree (`ROOT/<split>/<class>/<image>`), checked once and remembered.

Every image is checked before training (a truncated copy would stop a week-long run at its first
decode), which at ImageNet's 1.28 M files costs minutes, and longer on a network file system. So
the checked listing of each split is kept in a cache file, one entry per class folder with the
folder's modification time: while that time is unchanged (no file added, removed or renamed in
it), the folder is neither listed nor checked again. A changed folder is listed again, and only
its files that are new or differ in size or modification time are checked again. A file
rewritten in place under the same name is not noticed; delete the cache file to check all.

The cache lives in $XDG_CACHE_HOME/cnn-zoo-jax/folders (~/.cache by default), one file per tree
and split, so every run, eval.py and every variant of a sweep share it.
"""
import concurrent.futures
import functools
import hashlib
import os
import sys
import time

from cnn_train import user_cache

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png')  # compared lower-case (ImageNet's files are .JPEG)
CACHE_VERSION = 1
# Listing and checking wait on the file system (network ones most); more threads than this
# contend for the GIL (on 2 cores 16 took longer than 8, cold and warm).
THREADS = 8
CHUNK = 512   # files checked per task
RACY_SECONDS = 2  # a folder changed this recently may change again within its time's resolution


def classes(root, train_split):
  """Class names of an ImageFolder tree: the sorted subfolders of its train split."""
  if not os.path.isdir(root):
    raise ValueError(f'folder dataset: {root!r} is not a directory')
  train_dir = os.path.join(root, train_split)
  if not os.path.isdir(train_dir):
    raise ValueError(f'folder dataset {root}: no train split folder {train_dir!r} '
                     f'(splits: {subfolders(root)})')
  names = subfolders(train_dir)
  if not names:
    raise ValueError(f'folder dataset {root}: no class folders in {train_dir!r}')
  return tuple(names)


def subfolders(path):
  with os.scandir(path) as entries:
    return sorted(e.name for e in entries if e.is_dir() and not e.name.startswith('.'))


@functools.lru_cache(maxsize=8)
def split_files(root, split, class_names):
  """(paths, labels) of the complete JPEG and PNG images of a split, sorted by class then file
  name. Other files (another extension, empty, truncated) are skipped with one warning that
  counts them; hidden files (.DS_Store) are ignored."""
  split_dir = os.path.join(root, split)
  if not os.path.isdir(split_dir):
    raise ValueError(f'folder dataset {root}: no split folder {split_dir!r} '
                     f'(splits: {subfolders(root)})')
  found = subfolders(split_dir)
  for name in found:
    if name not in class_names:
      raise ValueError(f'folder dataset {root}: class folder {name!r} of split {split!r} '
                       f'is not a class of the train split')
  cache_file = cache_path(root, split)
  cached = _read_cache(cache_file)
  with concurrent.futures.ThreadPoolExecutor(THREADS) as pool:
    folders = list(pool.map(lambda name: _list_folder(os.path.join(split_dir, name),
                                                      cached.get(name)), found))
    _check_new_files(folders, split_dir, found, pool)
  if any(not folder.get('reused') for folder in folders) or set(cached) != set(found):
    _write_cache(cache_file, root, split, dict(zip(found, folders)))
  paths, labels, skipped, others = [], [], [], []
  for name, folder in zip(found, folders):
    label, class_dir = class_names.index(name), os.path.join(split_dir, name)
    bad = set(folder['bad'])
    for i, file in enumerate(folder['names']):
      if i in bad:
        skipped.append(os.path.join(class_dir, file))
      else:
        paths.append(os.path.join(class_dir, file))
        labels.append(label)
    others += [os.path.join(class_dir, file) for file in folder['others']]
  if skipped or others:
    _warn_skipped(root, split, skipped, others, len(paths))
  if not paths:
    raise ValueError(f'folder dataset {root}: no images in split folder {split_dir!r}')
  return tuple(paths), tuple(labels)


def _list_folder(path, cached):
  """A class folder's cache entry: the cached one while the folder's mtime is unchanged, else
  its files listed again, with `ok` known for those unchanged since the cache (None: check)."""
  started, mtime = time.time(), os.stat(path).st_mtime_ns  # before listing: a later change shows
  if cached and cached['mtime_ns'] == mtime:
    return {**cached, 'reused': True}
  known = {}
  if cached:
    bad = set(cached['bad'])
    known = {file: (size, file_mtime, i not in bad) for i, (file, size, file_mtime) in
             enumerate(zip(cached['names'], cached['sizes'], cached['mtimes']))}
  images, others = [], []
  with os.scandir(path) as entries:
    for entry in entries:
      if entry.name.startswith('.') or not entry.is_file():
        continue
      if not entry.name.lower().endswith(IMAGE_EXTENSIONS):
        others.append(entry.name)
        continue
      before = known.get(entry.name)
      if before:  # a file of the last listing: checked again only if it changed
        stat = entry.stat()
        if before[:2] == (stat.st_size, stat.st_mtime_ns):
          images.append((entry.name, stat.st_size, stat.st_mtime_ns, before[2]))
          continue
      images.append((entry.name, None, None, None))  # the check reads its size and mtime
  images.sort()
  return {'mtime_ns': None if started - mtime / 1e9 < RACY_SECONDS else mtime,
          'names': [i[0] for i in images], 'sizes': [i[1] for i in images],
          'mtimes': [i[2] for i in images], 'ok': [i[3] for i in images],
          'others': sorted(others)}


def _check_new_files(folders, split_dir, found, pool):
  """Fill in `bad` (indices of incomplete images) of the listed folders, checking in chunks."""
  todo = [(folder, i, os.path.join(split_dir, name, folder['names'][i]))
          for folder, name in zip(folders, found) if 'ok' in folder
          for i, ok in enumerate(folder['ok']) if ok is None]
  chunks = [todo[k:k + CHUNK] for k in range(0, len(todo), CHUNK)]
  results = pool.map(lambda chunk: [_check(path) for _, _, path in chunk], chunks)
  for chunk, checked in zip(chunks, results):
    for (folder, i, _), (ok, size, mtime) in zip(chunk, checked):
      folder['ok'][i], folder['sizes'][i], folder['mtimes'][i] = ok, size, mtime
  for folder in folders:
    if 'ok' in folder:
      folder['bad'] = [i for i, ok in enumerate(folder.pop('ok')) if not ok]


def _check(path):
  """(complete?, size, mtime_ns) of an image file; a file that cannot be read is not complete.
  Raw file descriptors: at a million files, Python's buffered file objects cost more than the
  reads."""
  try:
    fd = os.open(path, os.O_RDONLY)
  except OSError:
    return False, -1, -1
  try:
    stat = os.fstat(fd)
    head, tail = os.pread(fd, 16, 0), os.pread(fd, 16, max(stat.st_size - 16, 0))
  except OSError:
    return False, -1, -1
  finally:
    os.close(fd)
  return is_complete_image(head, tail), stat.st_size, stat.st_mtime_ns


def is_complete_image(head, tail):
  """Whether a file's first and last 16 bytes are those of a JPEG or PNG image: empty, truncated
  (an interrupted copy) and non-image files fail; decoding them would stop the run."""
  if head.startswith(b'\xff\xd8\xff'):
    return b'\xff\xd9' in tail  # end of image (a few padding bytes may follow)
  if head.startswith(b'\x89PNG\r\n\x1a\n'):
    return b'IEND' in tail
  return False


def _warn_skipped(root, split, skipped, others, kept):
  parts = []
  if others:
    extensions = {}
    for path in others:
      extension = os.path.splitext(path)[1].lower() or '(none)'
      extensions[extension] = extensions.get(extension, 0) + 1
    counts = ', '.join(f'{n} {e}' for e, n in sorted(extensions.items(), key=lambda x: -x[1]))
    parts.append(f'{len(others)} not JPEG or PNG ({counts}: {_examples(others)})')
  if skipped:
    parts.append(f'{len(skipped)} empty or incomplete images ({_examples(skipped)})')
  total = kept + len(skipped) + len(others)
  print(f'warning: folder dataset {root}: skipped {len(skipped) + len(others)} of {total} files '
        f'of split {split!r}: {"; ".join(parts)}', file=sys.stderr, flush=True)


def _examples(paths):
  return ', '.join(paths[:3]) + (', ...' if len(paths) > 3 else '')


def cache_path(root, split):
  key = hashlib.sha256(os.path.abspath(root).encode()).hexdigest()[:16]
  return user_cache.path('folders', f'{key}-{split}.json')


def _read_cache(path):
  """The cached class folders of a split, {} when there is none (or it is of another version)."""
  cache = user_cache.read_json(path)
  return cache.get('folders', {}) if cache.get('version') == CACHE_VERSION else {}


def _write_cache(path, root, split, folders):
  entries = {name: {k: v for k, v in folder.items() if k != 'reused'}
             for name, folder in folders.items()}
  data = {'version': CACHE_VERSION, 'root': os.path.abspath(root), 'split': split,
          'folders': entries}
  try:
    user_cache.write_json(path, data, separators=(',', ':'))
  except OSError as e:
    print(f'warning: cannot keep the checked listing of {root} in {path} ({e.strerror}): '
          'every start checks its files again', file=sys.stderr, flush=True)
