"""The one checkpoint format (engine.checkpoint_format.Checkpoint) and the one network rebuild
(engine.weights), including a file written before the dataclass existed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mirrordet.engine.checkpoint import load_checkpoint, save_checkpoint, strip_for_inference
from mirrordet.engine.checkpoint_format import CKPT_FORMAT, Checkpoint
from mirrordet.engine.weights import load_weights, read_checkpoint, rebuild_network
from mirrordet.nn.graph import ModelGraph
from mirrordet.ops.nms import NMSSettings
from mirrordet.utils.errors import CheckpointError

ASSETS = Path(__file__).parent / "assets"
OLD = ASSETS / "yolo-tiny-f28bf73-last.pt"
OLD_KEYS = ["format", "model_yaml", "model_cfg", "names", "model", "train_weights", "ema", "optimizer", "scaler",
            "epoch", "best_fitness", "train_args", "rng", "train_time", "date", "version"]


def _tiny() -> ModelGraph:
    return ModelGraph((ASSETS / "yolo-tiny.yaml").read_text(), source="yolo-tiny.yaml")


def test_file_written_by_the_previous_code_loads_unchanged():
    raw = load_checkpoint(OLD)
    assert list(raw) == OLD_KEYS  # the layout Checkpoint.to_dict writes (since then: + fingerprint)
    ckpt = read_checkpoint(OLD)
    assert ckpt.resumable and ckpt.epoch == 2 and ckpt.names == {0: "circle", 1: "square", 2: "triangle", 3: "star"}
    assert list(ckpt.to_dict()) == [*OLD_KEYS, "fingerprint"] and ckpt.fingerprint == ""
    net, again = load_weights(OLD)
    assert again.epoch == 2 and net.nc == 4 and net.task == "detect"
    assert all(torch.equal(v, raw["model"][k]) for k, v in net.state_dict().items() if k in raw["model"])
    resumed = rebuild_network(ckpt, OLD, weights="train_weights")
    assert all(torch.equal(v, raw["train_weights"][k]) for k, v in resumed.state_dict().items()
               if k in raw["train_weights"])
    with torch.no_grad():
        dets = net.eval().head.postprocess(net(torch.zeros(1, 3, 64, 64)), NMSSettings(conf=0.0, max_det=5))
    assert len(dets) == 1 and len(dets[0]) <= 5


def test_round_trip_through_a_file(tmp_path: Path):
    net = _tiny()
    ckpt = Checkpoint(model_yaml=net.yaml_text, model=net.state_dict(), model_cfg={"nc": 4, "scale": None},
                      names={0: "a", 1: "b", 2: "c", 3: "d"}, epoch=3, best_fitness=0.5, train_args={"lr0": 0.01})
    path = save_checkpoint(tmp_path / "c.pt", ckpt.to_dict())
    back = read_checkpoint(path)
    assert back.epoch == 3 and back.best_fitness == 0.5 and back.train_args == {"lr0": 0.01}
    assert back.names == ckpt.names and not back.resumable
    assert load_checkpoint(path)["format"] == CKPT_FORMAT
    stripped = Checkpoint.from_dict(strip_for_inference(ckpt.to_dict()))
    assert stripped.optimizer is None and stripped.train_weights is None


def test_names_as_a_list_become_a_dict():
    net = _tiny()
    ckpt = Checkpoint.from_dict({"model_yaml": net.yaml_text, "model": net.state_dict(), "names": ["x", "y"]})
    assert ckpt.names == {0: "x", 1: "y"}


DROP = object()
BAD = [
    ({"model_yaml": DROP}, r"required key\(s\) \['model_yaml'\] missing"),
    ({"format": "other-v9"}, "unknown format 'other-v9'"),
    ({"model_yaml": 3}, "'model_yaml' must be the YAML text"),
    ({"model": [1]}, "'model' must be a state dict"),
    ({"names": {0: 1}}, "'names' must be a list of str"),
    ({"epoch": "2"}, "'epoch' must be a non-negative int"),
    ({"epoch": -1}, "'epoch' must be a non-negative int"),
    ({"train_args": ["lr0"]}, "'train_args' must be a dict"),
    ({"optimizer": 5}, "'optimizer' must be a dict"),
    ({"best_fitness": "high"}, "'best_fitness' must be a number"),
]


@pytest.mark.parametrize("change,message", BAD, ids=[m.split("'")[1] if "'" in m else m[:12] for _, m in BAD])
def test_malformed_entries_are_named(change, message):
    d = {k: v for k, v in {"model_yaml": "nc: 1", "model": {}, **change}.items() if v is not DROP}
    with pytest.raises(CheckpointError, match=message):
        Checkpoint.from_dict(d, "x.pt")


def test_missing_state_dict_to_rebuild_is_named():
    net = _tiny()
    ckpt = Checkpoint(model_yaml=net.yaml_text, model=net.state_dict())
    with pytest.raises(CheckpointError, match="holds no 'train_weights' state dict"):
        rebuild_network(ckpt, "x.pt", weights="train_weights")
