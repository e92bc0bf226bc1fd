"""A wrapper that keeps tokens out of reprs, logs and tracebacks."""

from __future__ import annotations


class Secret:
    """A string that never shows itself in a repr, a log line or a traceback's locals."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        # Any constant would hash correctly too (equality decides), only slower: not a mutant worth a test.
        return hash(self._value)  # pragma: no mutate
