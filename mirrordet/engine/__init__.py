"""mirrordet.engine."""
