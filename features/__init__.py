"""Video decoding, clip backbones and the HDF5 feature store (installed as ``tad.features``).

Nothing here imports ``tad.datasets``, ``tad.detectors`` or ``tad.eval``.
"""
