"""Import every module of a package so that registry decorators run.

A new component is then one file plus its ``@REGISTRY.register_module()`` line.
"""
import importlib
import pkgutil


def import_submodules(package_name: str) -> None:
    package = importlib.import_module(package_name)
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package_name}.{info.name}")
