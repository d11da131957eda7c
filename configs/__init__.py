# Shipped mmengine configs, installed as the package data ``tad.configs``.
