"""tad: temporal action detection over untrimmed video.

Data flows one way: video -> HDF5 feature store (``tad.features``) -> dataset
(``tad.datasets``) -> model (``tad.detectors``) -> segments JSON -> metrics
(``tad.eval``). Upstream packages never import downstream ones.
"""

__version__ = "0.1.0"
