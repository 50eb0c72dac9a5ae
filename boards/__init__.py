"""Board definitions and the board registry.

The registry holds the built-in boards (:mod:`ternforge.boards.builtin`) and every board that
an installed package registers in the ``ternforge.boards`` entry-point group. An entry point
may load a :class:`Board`, a mapping of names to boards, or an iterable of boards (a
collection such as a list: entry points are loaded again on every lookup, so a one-shot
generator would yield its boards only once)::

    [project.entry-points."ternforge.boards"]
    myboard = "mypackage.boards:MY_BOARD"
"""

from collections.abc import Iterable, Mapping
from importlib.metadata import entry_points

from .board import FAMILIES, RESOURCE_KEYS, Board
from .builtin import BOARDS

__all__ = ["FAMILIES", "RESOURCE_KEYS", "Board", "all_boards", "board_names", "get_board"]

ENTRY_POINT_GROUP = "ternforge.boards"


def _boards_of(entry_point) -> list[Board]:
    loaded = entry_point.load()
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


def all_boards() -> dict[str, Board]:
    """Every known board by name: the built-in ones, then those from entry points."""
    boards = dict(BOARDS)
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        for board in _boards_of(entry_point):
            if boards.setdefault(board.name, board) != board:
                raise ValueError(f"Board names must be unique, not {board.name!r} twice "
                                 f"(again from entry point {entry_point.name!r})")
    return boards


def board_names() -> list[str]:
    """Names of every known board, sorted."""
    return sorted(all_boards())


def get_board(name: str) -> Board:
    """The board called ``name``; ``ValueError`` if there is none."""
    boards = all_boards()
    if name not in boards:
        raise ValueError(f"Board must be one of {', '.join(sorted(boards))}, not {name!r}")
    return boards[name]
