"""Shared fixtures of the data tests: small generated shapes datasets in YOLO layout."""

from pathlib import Path

import pytest

from mirrordet.data.synthetic import generate_shapes

NAMES = {0: "circle", 1: "square", 2: "triangle", 3: "star"}


def shapes_split_dict(root: Path) -> dict:
    """The dict ``load_dataset_yaml`` would return for a generated shapes folder."""
    return {"yaml_file": root / "x.yaml", "path": root, "names": NAMES, "nc": 4,
            "train": root / "images" / "train", "val": root / "images" / "val"}


@pytest.fixture(scope="module")
def make_shapes(tmp_path_factory):
    """Factory: ``make_shapes(n_train, n_val, imgsz)`` -> dataset dict of a fresh generated folder."""

    def make(n_train: int, n_val: int, imgsz: int) -> dict:
        root = generate_shapes(tmp_path_factory.mktemp("shapes") / "s", n_train=n_train, n_val=n_val,
                               imgsz=imgsz, seed=0)
        return shapes_split_dict(root)

    return make
