"""Clip backbones. Every module here is imported so its registry entry exists."""
from tad._autoimport import import_submodules

import_submodules(__name__)
