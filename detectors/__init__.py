"""Detection heads, losses and post-processing (installed as ``tad.detectors``).

Works on feature sequences and masks only; nothing here imports ``tad.features``,
``tad.datasets`` or ``tad.eval``. Every module is imported so its registry entry exists.
"""
from tad._autoimport import import_submodules

import_submodules(__name__)
