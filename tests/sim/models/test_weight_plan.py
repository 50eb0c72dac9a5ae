"""The weight-buffer planner: layout, descriptors, predictions and refusals."""

import json

import pytest

from ternforge.boards import get_board
from ternforge.gen.cli import main
from ternforge.hdl.matmul.parameters import TlmmParameters
from ternforge.hdl.gemv.parameters import URAM_WORDS
from ternforge.sim.models.weight_plan import MemoryModel, plan_layer


def lutram(**parameters):
    """The default LUT-RAM engine with ``parameters`` changed."""
    return TlmmParameters(**{"kind": "tlmm-lutram", "max_tokens": 1, "max_n": 8192,
                             **parameters})


KV260 = get_board("kv260")


def test_decode_of_a_bitnet_projection_is_bandwidth_bound():
    plan = plan_layer(n=4096, k=1536, engine=lutram(), board=KV260)
    assert plan.beat_bits == 16 * 8 * 5 and plan.line_bytes == 80 and plan.banks == 9
    assert plan.uram_count == 9 and not plan.resident and plan.passes == 1
    assert plan.layer_beats == 4096 // 16 * 1536 // 24
    assert plan.ddr_bytes == plan.layer_beats * 80 + 64  # the weights, one word of table
    assert plan.bandwidth_utilization >= 0.9
    assert plan.cycles >= plan.ddr_bytes / 64 and plan.cycles >= plan.compute_cycles


def test_prefill_tile_is_compute_bound():
    plan = plan_layer(n=4096, k=1536, engine=lutram(), board=KV260, tokens=64)
    assert plan.resident and plan.passes == 1
    assert plan.uram_count <= KV260.resources["URAM"]
    assert plan.compute_cycles == 64 * plan.layer_beats
    assert plan.stall_cycles < 0.01 * plan.cycles


def test_descriptors_cover_the_layer_once_in_bursts_within_4k():
    plan = plan_layer(n=1000, k=700, engine=lutram(rows=8), board=KV260)
    offset = 0
    for descriptor in plan.descriptors:
        assert descriptor.ddr_offset == offset
        assert descriptor.beats <= URAM_WORDS
        burst_offset = offset
        for start, size in descriptor.bursts:
            assert start == burst_offset and 0 < size <= 4096
            assert start // 4096 == (start + size - 1) // 4096
            burst_offset += size
        offset += descriptor.size
        assert burst_offset == offset and descriptor.size == descriptor.beats * plan.line_bytes
    assert sum(d.beats for d in plan.descriptors) == plan.layer_beats


def test_descriptor_table_holds_address_and_words_of_each_load():
    plan = plan_layer(n=1000, k=700, engine=lutram(rows=8), board=KV260)
    table = plan.descriptor_table(0x1000_0000, word_bytes=64)
    assert len(table) == 8 * len(plan.descriptors)
    for index, descriptor in enumerate(plan.descriptors):
        entry = table[8 * index:8 * index + 8]
        assert int.from_bytes(entry[:4], "little") == 0x1000_0000 + descriptor.ddr_offset
        assert int.from_bytes(entry[4:], "little") == -(-descriptor.size // 64)


def test_loads_must_start_on_a_data_word():
    engine = lutram(rows=4, groups_per_cycle=2)  # 40-bit beats
    assert len(plan_layer(n=64, k=96, engine=engine, board=KV260, load_beats=64,
                          memory=MemoryModel(bytes_per_cycle=8, axi_data_bits=64)
                          ).descriptors) == 4
    with pytest.raises(ValueError, match="Load beats must be a positive multiple of 8 "
                                         r"\(whole 8-byte words\), not 20"):
        plan_layer(n=64, k=96, engine=engine, board=KV260, load_beats=20,
                   memory=MemoryModel(bytes_per_cycle=8, axi_data_bits=64))
    with pytest.raises(ValueError, match="Loads per pass must be at most 64 "
                                         r"\(the GEMV top's descriptor table\), not 68"):
        plan_layer(n=64, k=102, engine=engine, board=KV260, load_beats=4,
                   memory=MemoryModel(bytes_per_cycle=8, axi_data_bits=32))


def test_slower_memory_means_more_stalls():
    fast = plan_layer(n=512, k=512, engine=lutram(), board=KV260,
                      memory=MemoryModel(bytes_per_cycle=80, latency=10))
    slow = plan_layer(n=512, k=512, engine=lutram(), board=KV260,
                      memory=MemoryModel(bytes_per_cycle=20, latency=10))
    assert fast.stall_cycles < slow.stall_cycles and fast.cycles < slow.cycles
    assert slow.cycles >= slow.ddr_bytes / 20


def test_refuses_beats_wider_than_the_board_has_urams():
    with pytest.raises(ValueError, match="need 72 URAM288 side by side, but kv260 has 64"):
        plan_layer(n=4096, k=4096, engine=lutram(rows=128, groups_per_cycle=8),
                   board=KV260)


@pytest.mark.parametrize("args,message", [
    ({"n": 0, "k": 4}, "Layer rows N must be a positive integer, not 0"),
    ({"n": 4, "k": 4, "tokens": -1}, "Tokens must be a positive integer, not -1"),
])
def test_rejects_bad_shapes(args, message):
    with pytest.raises(ValueError, match=message):
        plan_layer(engine=lutram(), board=KV260, **args)


def test_refuses_an_engine_other_than_the_lutram_one():
    with pytest.raises(ValueError, match=r"^Engine must be of kind tlmm-lutram, not 'tlmm'$"):
        plan_layer(n=4, k=4, engine=TlmmParameters(), board=KV260)


def test_plan_command_prints_and_writes_json(capsys, tmp_path):
    main(["plan", "--layer", "4096,1536", "--json", str(tmp_path / "plan.json")])
    out = capsys.readouterr().out
    assert "bandwidth_utilization" in out and "uram_count" in out
    values = json.loads((tmp_path / "plan.json").read_text())
    assert values["uram_count"] == 9 and len(values["descriptors"]) == 4


def test_plan_command_rejects_bad_layer(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["plan", "--layer", "4096"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == (
        "ternforge: --layer must be N,K with positive integers, not '4096'\n")
