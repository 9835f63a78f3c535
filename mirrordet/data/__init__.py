"""mirrordet.data."""
