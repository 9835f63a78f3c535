"""The model-wide activation of a model YAML's top-level ``activation`` key.

A fixed table maps names to ``torch.nn`` classes; the spellings model files use are accepted
(``SiLU``, ``nn.ReLU``, ``torch.nn.ReLU()``, ``nn.LeakyReLU(0.1)``, case-insensitive) and the
string is matched against a pattern, never evaluated. While a model is built (the parser's
:func:`activation_scope`), every ``Conv`` with ``act=True`` takes this activation, inner convs of
blocks included; outside a build, and for files without the key, it is SiLU.
"""

from __future__ import annotations

import contextlib
import re
from contextvars import ContextVar
from typing import Callable, Iterator

from torch import nn

from mirrordet.utils.errors import ModelConfigError

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "silu": nn.SiLU, "relu": nn.ReLU, "relu6": nn.ReLU6, "leakyrelu": nn.LeakyReLU, "hardswish": nn.Hardswish,
    "gelu": nn.GELU, "mish": nn.Mish, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "elu": nn.ELU, "identity": nn.Identity,
}
TAKES_ONE_NUMBER = {"leakyrelu", "elu"}  # negative_slope, alpha
SPELLING = re.compile(r"^(?:torch\.)?(?:nn\.)?(?P<name>[A-Za-z][A-Za-z0-9]*)(?:\((?P<arg>[0-9]*\.?[0-9]*)\))?$")

_DEFAULT: ContextVar[Callable[[], nn.Module]] = ContextVar("mirrordet_default_activation", default=nn.SiLU)


def parse_activation(spec: object, source: str = "<model>") -> Callable[[], nn.Module]:
    """A factory of fresh activation modules for the ``activation`` value ``spec``.

    Raises:
        ModelConfigError: not a string, or a name outside :data:`ACTIVATIONS`, or an argument to
            an activation that takes none.
    """
    m = SPELLING.match(spec.strip()) if isinstance(spec, str) else None
    name = m.group("name").lower() if m else None
    if name not in ACTIVATIONS:
        allowed = ", ".join(cls.__name__ for cls in ACTIVATIONS.values())
        raise ModelConfigError(f"{source}: `activation` {spec!r} is not one of {allowed} "
                               "(written e.g. SiLU, nn.ReLU, torch.nn.ReLU() or nn.LeakyReLU(0.1))")
    cls, arg = ACTIVATIONS[name], m.group("arg")
    if arg:
        if name not in TAKES_ONE_NUMBER:
            raise ModelConfigError(f"{source}: `activation` {cls.__name__} takes no argument, got {spec!r}")
        try:
            value = float(arg)
        except ValueError:
            raise ModelConfigError(f"{source}: `activation` argument must be a number, got {spec!r}") from None
        return lambda: cls(value)
    return cls


def default_activation() -> nn.Module:
    """A fresh module of the activation in force (SiLU outside an :func:`activation_scope`)."""
    return _DEFAULT.get()()


@contextlib.contextmanager
def activation_scope(factory: Callable[[], nn.Module] | None) -> Iterator[None]:
    """Within the block, ``Conv(..., act=True)`` uses ``factory()`` (None: leave the default)."""
    if factory is None:
        yield
        return
    token = _DEFAULT.set(factory)
    try:
        yield
    finally:
        _DEFAULT.reset(token)
