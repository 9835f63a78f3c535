"""``python -m mirrordet MODE key=value ...``."""

from mirrordet.cli import entrypoint

entrypoint()
