"""Workarounds for known breakages of pinned dependencies (see ``mmengine_fixes``)."""
from tad.compat.mmengine_fixes import apply as apply_mmengine_fixes

__all__ = ["apply_mmengine_fixes"]
