import pytest

from mirrordet.registry import Registry
from mirrordet.utils.errors import RegistryError


def test_register_and_get():
    reg = Registry("thing")

    @reg.register(aliases=("nn.Thing",))
    class Thing:
        pass

    assert reg.get("Thing") is Thing and reg.get("nn.Thing") is Thing
    assert "Thing" in reg and len(reg) == 2


def test_duplicate_name_raises():
    reg = Registry("thing")
    reg.add("A", object)
    with pytest.raises(RegistryError, match="already registered"):
        reg.add("A", int)


def test_unknown_name_lists_close_matches():
    reg = Registry("module")
    for name in ("CSPMirror", "C2f", "Conv"):
        reg.add(name, object)
    with pytest.raises(RegistryError, match="did you mean CSPMirror"):
        reg.get("CSPMiror")
