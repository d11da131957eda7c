"""Glue around mmengine's Runner: building it from a config, hooks, launch helpers."""
