"""One converter for every message and event of the daemon's protocol: typed in, plain JSON out.

cattrs with strict hooks: a string is not an int, `true` is not a number, a string is not a list of characters,
unknown fields are refused. Errors name the field (`$.session_id`) so that a client's author can act on them.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any, TypeVar

import cattrs

from cove.protocol.codes import INVALID_PARAMS
from cove.protocol.framing import ProtocolError

T = TypeVar("T")

converter = cattrs.Converter(forbid_extra_keys=True)


def _scalar(kind: type, *also: type) -> Callable[[Any, Any], Any]:
    accepted = (kind, *also)

    def structure(value: Any, _: Any) -> Any:
        if isinstance(value, bool) is not (kind is bool) or not isinstance(value, accepted):
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
        return value

    return structure


def _sequence(value: Any, kind: Any) -> Any:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    args = typing.get_args(kind)
    item = args[0] if args else Any
    items = [converter.structure(v, item) for v in value]
    return tuple(items) if typing.get_origin(kind) is tuple else items


def _mapping(value: Any, kind: Any) -> Any:
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    _, item = typing.get_args(kind) or (str, Any)
    return {key: converter.structure(v, item) for key, v in value.items()}


converter.register_structure_hook(str, _scalar(str))
converter.register_structure_hook(int, _scalar(int))
converter.register_structure_hook(float, _scalar(float, int))
converter.register_structure_hook(bool, _scalar(bool))


def _is_sequence(kind: Any) -> bool:
    return typing.get_origin(kind) in (list, tuple)


def _is_mapping(kind: Any) -> bool:
    return typing.get_origin(kind) is dict or kind is dict


converter.register_structure_hook_func(_is_sequence, _sequence)
converter.register_structure_hook_func(_is_mapping, _mapping)


def structure(kind: type[T], data: Any, what: str) -> T:
    """`data` as a `kind`; a ProtocolError (InvalidParams) naming `what` and the bad fields otherwise."""
    if not isinstance(data, dict):
        raise ProtocolError(f"{what}: expected an object, got {type(data).__name__}", INVALID_PARAMS)
    try:
        return converter.structure(data, kind)
    except cattrs.BaseValidationError as err:
        raise ProtocolError(f"{what}: {'; '.join(cattrs.transform_error(err))}", INVALID_PARAMS) from None
    except (TypeError, ValueError) as err:
        raise ProtocolError(f"{what}: {err}", INVALID_PARAMS) from None


def unstructure(value: Any) -> Any:
    """A message or event as plain JSON values."""
    return converter.unstructure(value)
