import dataclasses

import pytest

import ternforge.boards as boards
from ternforge.boards import RESOURCE_KEYS, Board, all_boards, board_names, get_board
from ternforge.boards.builtin import BOARDS, KV260, ZCU104


class FakeEntryPoint:
    def __init__(self, name, value):
        self.name = name
        self.value = value

    def load(self):
        return self.value


def use_entry_points(monkeypatch, *loaded):
    fakes = [FakeEntryPoint(f"fake{i}", value) for i, value in enumerate(loaded)]

    def entry_points(*, group):
        assert group == "ternforge.boards"
        return fakes

    monkeypatch.setattr(boards, "entry_points", entry_points)


def custom_board(name="myboard"):
    return dataclasses.replace(KV260, name=name, description="A custom board")


def test_registry_lists_builtin_boards():
    names = board_names()
    assert {"kv260", "zcu104"} <= set(names)
    assert names == sorted(names)
    assert all_boards()["kv260"] is KV260
    assert get_board("zcu104") is ZCU104
    assert BOARDS == {"kv260": KV260, "zcu104": ZCU104}


@pytest.mark.parametrize(("name", "part", "resources", "clock_hz"), [
    ("kv260", "xck26-sfvc784-2LV-c",
     {"LUT": 117_120, "FF": 234_240, "CARRY8": 14_640, "DSP": 1_248, "BRAM36": 144, "URAM": 64},
     180e6),
    ("zcu104", "xczu7ev-ffvc1156-2-e",
     {"LUT": 230_400, "FF": 460_800, "CARRY8": 28_800, "DSP": 1_728, "BRAM36": 312, "URAM": 96},
     1500e6 / 9),
])
def test_builtin_board_numbers(name, part, resources, clock_hz):
    board = get_board(name)
    assert board.part == part
    assert board.family == "xcup"
    assert dict(board.resources) == resources
    assert board.clock_hz == clock_hz
    assert board.clock_mhz == clock_hz / 1e6
    assert board.ddr_bytes_per_s == 19.2e9
    assert board.static_power_w > 0
    assert set(board.dynamic_power_w_per_mhz) == set(RESOURCE_KEYS)
    assert all(0 < watts < 1e-3 for watts in board.dynamic_power_w_per_mhz.values())


def test_builtin_boards_name_their_vivado_board_parts():
    assert KV260.board_part == "xilinx.com:kv260_som:part0:1.4"
    assert ZCU104.board_part == "xilinx.com:zcu104:part0:1.1"
    assert dataclasses.replace(KV260, board_part=None).board_part is None


def test_board_is_frozen_and_copies_mappings():
    resources = dict(KV260.resources)
    board = dataclasses.replace(KV260, resources=resources)
    resources["LUT"] = 0
    assert board.resources["LUT"] == 117_120
    with pytest.raises(dataclasses.FrozenInstanceError):
        board.clock_hz = 1e6
    with pytest.raises(TypeError):
        board.resources["LUT"] = 0


def test_board_fields_are_keyword_only():
    with pytest.raises(TypeError):
        Board("kv260", "xck26-sfvc784-2LV-c")


@pytest.mark.parametrize(("changes", "message"), [
    ({"name": ""}, "Board name must be a non-empty string, not ''"),
    ({"part": None}, "Board part must be a non-empty string, not None"),
    ({"family": "xc7"}, "Board family must be one of xcup, not 'xc7'"),
    ({"resources": {"LUT": 8}},
     r"Board resources must have keys \['LUT', 'FF', 'CARRY8', 'DSP', 'BRAM36', 'URAM'\], "
     r"not \{'LUT': 8\}"),
    ({"resources": {**KV260.resources, "DSP": -1}},
     "Board DSP count must be a non-negative integer, not -1"),
    ({"resources": {**KV260.resources, "URAM": 1.5}},
     "Board URAM count must be a non-negative integer, not 1.5"),
    ({"resources": {**KV260.resources, "CARRY8": 1}},
     "Board CARRY8 count must be LUT // 8 = 14640, not 1"),
    ({"clock_hz": 0}, "Clock frequency must be a positive number of hertz, not 0"),
    ({"clock_hz": True}, "Clock frequency must be a positive number of hertz, not True"),
    ({"ddr_bytes_per_s": -1.0},
     "DDR bandwidth must be a positive number of bytes per second, not -1.0"),
    ({"ddr_size_bytes": 0}, "DDR size must be a positive integer of bytes, not 0"),
    ({"ddr_size_bytes": 2.5e9}, "DDR size must be a positive integer of bytes, not 2500000000.0"),
    ({"static_power_w": "1 W"},
     "Static power must be a non-negative number of watts, not '1 W'"),
    ({"dynamic_power_w_per_mhz": {"LUT": 1e-7}},
     r"Board dynamic power coefficients must have keys \[.*\], not \{'LUT': 1e-07\}"),
    ({"dynamic_power_w_per_mhz": {**KV260.dynamic_power_w_per_mhz, "FF": -1e-7}},
     "Dynamic power of FF must be a non-negative number of watts per MHz, not -1e-07"),
    ({"board_part": "kv260_som"},
     "Vivado board part must be vendor:board:component:version or None, not 'kv260_som'"),
    ({"board_part": "xilinx.com:kv260_som:part0:*"},
     r"Vivado board part must be vendor:board:component:version or None, "
     r"not 'xilinx.com:kv260_som:part0:\*'"),
])
def test_board_validation(changes, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        dataclasses.replace(KV260, **changes)


def test_unknown_board():
    with pytest.raises(ValueError, match="^Board must be one of kv260, zcu104, not 'foo'$"):
        get_board("foo")


def test_utilization():
    used = {"LUT": 11_712, "FF": 234_240, "BRAM36": 0.5, "URAM": 96, "source": "analytic"}
    assert KV260.utilization(used) == {
        "LUT": 10.0, "FF": 100.0, "CARRY8": 0.0, "DSP": 0.0, "BRAM36": 0.35, "URAM": 150.0,
    }
    assert ZCU104.utilization({"DSP": 1}) == {
        "LUT": 0.0, "FF": 0.0, "CARRY8": 0.0, "DSP": 0.06, "BRAM36": 0.0, "URAM": 0.0,
    }


def test_utilization_of_missing_resource():
    board = dataclasses.replace(KV260, resources={**KV260.resources, "URAM": 0})
    assert board.utilization({})["URAM"] == 0.0
    assert board.utilization({"URAM": 1})["URAM"] == float("inf")


def test_fits():
    assert KV260.fits({"LUT": 117_120, "URAM": 64}) == []
    assert KV260.fits({"LUT": 117_121, "DSP": 1_000, "URAM": 65}) == [
        "LUT: 117,121 used, only 117,120 on kv260",
        "URAM: 65 used, only 64 on kv260",
    ]
    assert ZCU104.fits({"URAM": 65}) == []


def test_used_counts_are_validated():
    with pytest.raises(ValueError, match="^Used FF count must be a non-negative number, not -3$"):
        KV260.fits({"FF": -3})


@pytest.mark.parametrize("loaded", [
    custom_board(),
    {"myboard": custom_board()},
    [custom_board()],
    (custom_board(),),
])
def test_entry_point_adds_boards(monkeypatch, loaded):
    use_entry_points(monkeypatch, BOARDS, loaded)
    assert board_names() == ["kv260", "myboard", "zcu104"]
    assert get_board("myboard").description == "A custom board"
    with pytest.raises(ValueError, match="^Board must be one of kv260, myboard, zcu104, "):
        get_board("foo")


class Unimportable(FakeEntryPoint):
    def load(self):
        raise ModuleNotFoundError("No module named 'mypackage'")


@pytest.mark.parametrize(("loaded", "message"), [
    (Unimportable, "Board entry point 'fake0' must load, not fail with ModuleNotFoundError: "
                   "No module named 'mypackage'"),
    (42, "Board entry point 'fake0' must load a Board, a mapping of names to Boards or an "
         "iterable of Boards, not 42"),
    (["kv260"], "Board entry point 'fake0' must load a Board, .*, not \\['kv260'\\]"),
    ({"other": custom_board()}, "Board entry point 'fake0' must map each name to the Board "
                                "of that name, not 'other': .*"),
    (custom_board("kv260"), "Board names must be unique, not 'kv260' twice "
                            "\\(again from entry point 'fake0'\\)"),
])
def test_a_broken_entry_point_is_skipped_with_a_warning(monkeypatch, loaded, message):
    use_entry_points(monkeypatch, loaded, custom_board())
    if loaded is Unimportable:
        boards.entry_points(group="ternforge.boards")[0].__class__ = Unimportable
    with pytest.warns(boards.BoardPluginWarning, match=f"^{message}; skipped$"):
        assert board_names() == ["kv260", "myboard", "zcu104"]  # the others still there
    with pytest.warns(boards.BoardPluginWarning):
        assert get_board("kv260") is KV260
    with pytest.warns(boards.BoardPluginWarning), pytest.raises(
            ValueError, match=f"^Board must be one of kv260, myboard, zcu104, not 'mine' "
                              f"\\(1 broken board entry points skipped: {message}\\)$"):
        get_board("mine")
