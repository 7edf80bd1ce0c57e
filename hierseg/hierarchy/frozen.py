"""Read-only JSON data: dicts and lists that refuse to change, yet serialise and compare as usual.

``Hierarchy.meta`` is one; its areas, boxes and children are computed once at construction, and
metadata that could change afterwards would no longer describe them. The classes subclass ``dict``
and ``list``, so ``json.dumps``, ``==`` with plain data, copying and pickling keep working.
"""
from __future__ import annotations

import json
from typing import Any, NoReturn

__all__ = ["FrozenDict", "FrozenList", "freeze_json"]


def _refuse(self: Any, *args: Any, **kwargs: Any) -> NoReturn:
    raise TypeError(f"this {type(self).__name__} is read-only; pass the data in when it is constructed")


class FrozenDict(dict):
    """A dict whose every mutator raises ``TypeError``."""

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _refuse

    def __reduce__(self) -> tuple[Any, ...]:
        # dict's default pickling refills the copy through __setitem__, which refuses.
        return type(self), (dict(self),)


class FrozenList(list):
    """A list whose every mutator raises ``TypeError``."""

    __setitem__ = __delitem__ = __iadd__ = __imul__ = append = extend = insert = pop = remove = clear = _refuse
    sort = reverse = _refuse

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (list(self),)


def freeze_json(data: dict[str, Any]) -> FrozenDict:
    """A read-only copy of JSON-able ``data``, exactly as it would come back from JSON.

    Raises:
        ValueError: if ``data`` is not a dict or not JSON-serialisable (NaN and infinities included).
    """
    if not isinstance(data, dict):
        raise ValueError(f"expected a dict, got {type(data).__name__}")
    try:
        text = json.dumps(data, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"not JSON-serialisable: {error}") from None
    return _freeze(json.loads(text))


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return FrozenDict({key: _freeze(item) for key, item in value.items()})
    if isinstance(value, list):
        return FrozenList(_freeze(item) for item in value)
    return value
