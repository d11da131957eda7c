"""Datasets that read the HDF5 feature store and annotation files. Every module is
imported so its registry entry exists."""
from tad._autoimport import import_submodules

import_submodules(__name__)
