"""Registry of clip backbones. A new backbone is one file in ``features/backbones/``
decorated with ``@BACKBONES.register_module(name=...)``."""
from mmengine.registry import Registry

BACKBONES = Registry("backbone", scope="tad", locations=["tad.features.backbones"])
