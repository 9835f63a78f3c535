"""Every bundled YOLO-family model file, at every scale, has the parameter count of the published
model (Ultralytics' builds of the same files, nc 80 / 1000 for classifiers; the -seg files with their Segment head), pinned here so that no
Ultralytics install is needed; the mirror variants have their baseline's count. Built on the meta
device: counting only, no memory or initialization cost."""

import pytest
import torch

from mirrordet.nn.parser import load_model_yaml, parse_model
from mirrordet.utils.files import bundled_dir

ZOO = [
    ("yolo11-cls.yaml", "n", 2_812_104), ("yolo11-cls.yaml", "s", 6_724_008), ("yolo11-cls.yaml", "m", 11_634_216),
    ("yolo11-cls.yaml", "l", 14_115_624), ("yolo11-cls.yaml", "x", 29_637_064), ("yolo11.yaml", "n", 2_624_080),
    ("yolo11.yaml", "s", 9_458_752), ("yolo11.yaml", "m", 20_114_688), ("yolo11.yaml", "l", 25_372_160),
    ("yolo11.yaml", "x", 56_966_176), ("yolo12-cls.yaml", "n", 2_999_496), ("yolo12-cls.yaml", "s", 7_385_512),
    ("yolo12-cls.yaml", "m", 13_261_608), ("yolo12-cls.yaml", "l", 16_737_160),
    ("yolo12-cls.yaml", "x", 35_351_112), ("yolo12.yaml", "n", 2_602_288), ("yolo12.yaml", "s", 9_284_096),
    ("yolo12.yaml", "m", 20_199_168), ("yolo12.yaml", "l", 26_450_784), ("yolo12.yaml", "x", 59_210_784),
    ("yolo26.yaml", "n", 2_572_280), ("yolo26.yaml", "s", 10_009_784), ("yolo26.yaml", "m", 21_896_248),
    ("yolo26.yaml", "l", 26_299_704), ("yolo26.yaml", "x", 58_993_368), ("yolov10b.yaml", "b", 20_574_384),
    ("yolov10l.yaml", "l", 25_888_688), ("yolov10m.yaml", "m", 16_576_768), ("yolov10n.yaml", "n", 2_775_520),
    ("yolov10s.yaml", "s", 8_128_272), ("yolov10x.yaml", "x", 31_808_960), ("yolov3-tiny.yaml", None, 12_173_248),
    ("yolov5.yaml", "n", 2_654_816), ("yolov5.yaml", "s", 9_153_152), ("yolov5.yaml", "m", 25_111_456),
    ("yolov5.yaml", "l", 53_225_024), ("yolov5.yaml", "x", 97_276_448),
    ("yolov6.yaml", "n", 4_500_080), ("yolov6.yaml", "s", 16_452_192), ("yolov6.yaml", "m", 52_020_496),
    ("yolov6.yaml", "l", 110_926_464), ("yolov6.yaml", "x", 173_061_616),
    ("yolov8-cls-resnet50.yaml", "n", 27_413_032), ("yolov8-cls-resnet50.yaml", "x", 27_413_032),
    ("yolov8-cls.yaml", "n", 2_719_288), ("yolov8-cls.yaml", "s", 6_361_736), ("yolov8-cls.yaml", "m", 17_053_336),
    ("yolov8-cls.yaml", "l", 37_480_744), ("yolov8-cls.yaml", "x", 57_422_840),
    ("yolov8-ghost.yaml", "n", 1_865_316), ("yolov8-ghost.yaml", "s", 5_960_072),
    ("yolov8-ghost.yaml", "m", 10_336_312), ("yolov8-ghost.yaml", "l", 14_277_872),
    ("yolov8-ghost.yaml", "x", 22_229_308), ("yolov8-p6.yaml", "n", 4_984_352), ("yolov8-p6.yaml", "s", 17_911_792),
    ("yolov8-p6.yaml", "m", 44_887_488), ("yolov8-p6.yaml", "l", 62_384_016), ("yolov8-p6.yaml", "x", 97_423_072),
    ("yolov8.yaml", "n", 3_157_200), ("yolov8.yaml", "s", 11_166_560), ("yolov8.yaml", "m", 25_902_640),
    ("yolov8.yaml", "l", 43_691_520), ("yolov8.yaml", "x", 68_229_648), ("yolov9c.yaml", None, 25_590_912),
    ("yolov9e.yaml", None, 58_206_592), ("yolov9m.yaml", None, 20_216_160), ("yolov9s.yaml", None, 7_318_368),
    ("yolov9t.yaml", None, 2_128_720),
    ("yolov8-seg.yaml", "n", 3_409_968), ("yolov8-seg.yaml", "s", 11_821_056), ("yolov8-seg.yaml", "m", 27_285_968),
    ("yolov8-seg.yaml", "l", 45_997_728), ("yolov8-seg.yaml", "x", 71_827_888),
    ("yolo11-seg.yaml", "n", 2_876_848), ("yolo11-seg.yaml", "s", 10_113_248), ("yolo11-seg.yaml", "m", 22_420_896),
    ("yolo11-seg.yaml", "l", 27_678_368), ("yolo11-seg.yaml", "x", 62_142_656),
]
MIRRORS = {"yolov8-mirror.yaml": "yolov8.yaml", "yolo11-mirror.yaml": "yolo11.yaml"}


def count(name: str, scale: str | None) -> int:
    d, _, source = load_model_yaml(name)
    with torch.device("meta"):
        parsed, _ = parse_model(d, scale=scale, source=source)
    return sum(p.numel() for p in parsed.layers.parameters())


@pytest.mark.parametrize("name, scale, params", ZOO, ids=[f"{n}:{s}" for n, s, _ in ZOO])
def test_bundled_file_has_the_published_count(name, scale, params):
    assert count(name, scale) == params


@pytest.mark.parametrize("mirror, base", sorted(MIRRORS.items()))
@pytest.mark.parametrize("scale", "nsmlx")
def test_mirror_variants_have_their_baselines_count(mirror, base, scale):
    assert count(mirror, scale) == dict(((n, s), c) for n, s, c in ZOO)[(base, scale)]


def test_every_bundled_yolo_file_is_pinned():
    files = {p.name for p in bundled_dir("models").glob("yolo*.yaml")}
    assert files == {n for n, _, _ in ZOO} | set(MIRRORS)
