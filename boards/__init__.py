"""Board definitions and the board registry.

The registry holds the built-in boards (:mod:`ternforge.boards.builtin`) and every board that
an installed package registers in the ``ternforge.boards`` entry-point group. An entry point
may load a :class:`Board`, a mapping of names to boards, or an iterable of boards (a
collection such as a list: entry points are loaded again on every lookup, so a one-shot
generator would yield its boards only once)::

    [project.entry-points."ternforge.boards"]
    myboard = "mypackage.boards:MY_BOARD"

A broken entry point (one that cannot be imported, loads something else, or repeats a board's
name) is skipped with a :class:`BoardPluginWarning` naming it, so one broken package does not
take every board away; asking for a board that is not there then also names what was skipped.
"""

import warnings
from collections.abc import Iterable, Mapping
from importlib.metadata import entry_points

from .board import FAMILIES, RESOURCE_KEYS, Board
from .builtin import BOARDS

__all__ = ["FAMILIES", "RESOURCE_KEYS", "Board", "BoardPluginWarning", "all_boards",
           "board_names", "get_board"]

ENTRY_POINT_GROUP = "ternforge.boards"


class BoardPluginWarning(UserWarning):
    """A ``ternforge.boards`` entry point was skipped because it is broken."""


def _boards_of(entry_point) -> list[Board]:
    try:
        loaded = entry_point.load()
    except Exception as error:  # whatever importing a third party's module raises
        raise ValueError(f"Board entry point {entry_point.name!r} must load, not fail with "
                         f"{type(error).__name__}: {error}") from None
    if isinstance(loaded, Board):
        return [loaded]
    if isinstance(loaded, Mapping):
        for name, board in loaded.items():
            if not isinstance(board, Board) or board.name != name:
                raise ValueError(f"Board entry point {entry_point.name!r} must map each name "
                                 f"to the Board of that name, not {name!r}: {board!r}")
        return list(loaded.values())
    if isinstance(loaded, Iterable) and not isinstance(loaded, str):
        boards = list(loaded)
        if all(isinstance(board, Board) for board in boards):
            return boards
    raise ValueError(f"Board entry point {entry_point.name!r} must load a Board, a mapping of "
                     f"names to Boards or an iterable of Boards, not {loaded!r}")


def _registry() -> tuple[dict[str, Board], list[str]]:
    """The boards by name, and why each skipped entry point was skipped."""
    boards, skipped = dict(BOARDS), []
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            found = _boards_of(entry_point)
            for board in found:
                if board.name in boards and boards[board.name] != board:
                    raise ValueError(f"Board names must be unique, not {board.name!r} twice "
                                     f"(again from entry point {entry_point.name!r})")
        except ValueError as error:
            skipped.append(str(error))
            continue
        boards.update((board.name, board) for board in found)
    return boards, skipped


def _warned_registry() -> tuple[dict[str, Board], list[str]]:
    boards, skipped = _registry()
    for reason in skipped:
        warnings.warn(f"{reason}; skipped", BoardPluginWarning, stacklevel=3)
    return boards, skipped


def all_boards() -> dict[str, Board]:
    """Every known board by name: the built-in ones, then those from entry points. A broken
    entry point is skipped with a :class:`BoardPluginWarning`."""
    return _warned_registry()[0]


def board_names() -> list[str]:
    """Names of every known board, sorted."""
    return sorted(all_boards())


def get_board(name: str) -> Board:
    """The board called ``name``; ``ValueError`` if there is none."""
    boards, skipped = _warned_registry()
    if name not in boards:
        because = f" ({len(skipped)} broken board entry points skipped: {'; '.join(skipped)})" \
            if skipped else ""
        raise ValueError(f"Board must be one of {', '.join(sorted(boards))}, not "
                         f"{name!r}{because}")
    return boards[name]
