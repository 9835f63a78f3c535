import subprocess
import sys

import pytest

from mirrordet.cli import main, parse_overrides
from mirrordet.utils.errors import ConfigError


def test_parse_overrides_literals_only(tmp_path):
    marker = tmp_path / "x"
    got = parse_overrides(["epochs=3", "device=0,1", "amp=False", "classes=[0, 2]", f"name=__import__('os').system('touch {marker}')"])
    assert got["epochs"] == 3 and got["device"] == "0,1" and got["amp"] is False and got["classes"] == [0, 2]
    assert isinstance(got["name"], str) and not marker.exists()


@pytest.mark.parametrize("tokens", [["epochs"], ["=3"], ["epochs=1", "epochs=2"]])
def test_parse_overrides_errors(tokens):
    with pytest.raises(ConfigError):
        parse_overrides(tokens)


def test_info_prints_table_and_totals(capsys, caplog):
    assert main(["info", "model=yolov8n-mirror.yaml", "imgsz=320"]) == 0
    err = capsys.readouterr().err
    assert "CSPMirror" in err and "3,157,200 parameters" in err and "GFLOPs" in err and "strides 8/16/32" in err


@pytest.mark.parametrize(
    "argv, message",
    [(["info", "modle=yolov8n.yaml"], "did you mean 'mode' or 'model'"), (["tran"], "did you mean 'train'"),
     (["info", "model=nope.yaml"], "not found"), (["info", "imgsz=-1"], "> 0")],
)
def test_bad_input_gives_one_line_error(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_console_script_help():
    out = subprocess.run([sys.executable, "-m", "mirrordet", "help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "usage: mirrordet [TASK] MODE" in out.stdout and "lr0=0.01" in out.stdout
