"""Optional Albumentations pixel-level transforms for detection and segmentation training (``albumentations=True``).

The set Ultralytics users know: Blur, MedianBlur, ToGray and CLAHE, each with probability 0.01 (``p``), applied
after the geometric augmentations and before the HSV jitter. They change pixels only, so boxes and masks are
unaffected. Each call is seeded from the sample's own augmentation generator, so runs stay a function of
(seed, epoch, sample) as with the built-in augmentations. Needs the ``albumentations`` package, which mirrordet
never requires: asking for it without the package is a one-line error, and the transforms used are listed
in the log.
"""

from __future__ import annotations

import importlib.util
from typing import Callable

import numpy as np

from mirrordet.utils.errors import ConfigError
from mirrordet.utils.log import LOGGER


def build_albumentations(p: float = 0.01) -> Callable[[np.ndarray, int], np.ndarray]:
    """A function ``(BGR uint8 image [H, W, 3], seed) -> new BGR image`` applying the transforms.

    Raises:
        ConfigError: the albumentations package is not installed.
    """
    if importlib.util.find_spec("albumentations") is None:
        raise ConfigError("albumentations=True needs the albumentations package: pip install albumentations")
    import albumentations as A

    compose = A.Compose([A.Blur(p=p), A.MedianBlur(p=p), A.ToGray(p=p), A.CLAHE(p=p)])
    LOGGER.info(f"albumentations {A.__version__}: " + ", ".join(f"{type(t).__name__}(p={t.p})" for t in compose.transforms))

    def apply(img: np.ndarray, seed: int) -> np.ndarray:
        compose.set_random_seed(int(seed))
        rgb = np.ascontiguousarray(img[:, :, ::-1])
        return np.ascontiguousarray(compose(image=rgb)["image"][:, :, ::-1])

    return apply
