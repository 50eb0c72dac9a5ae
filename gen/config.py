"""Design configurations: frozen, validated, round-tripping through TOML and JSON.

A configuration file looks like::

    board = "kv260"

    [tlmm]
    group_size = 3
    groups_per_cycle = 8
    rows = 16
    max_k = 8192
    max_tokens = 8

Both the TLMM engine and its plain-adder baseline are generated from the ``[tlmm]`` table, so
they always have the same throughput.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..hdl.accelerator.parameters import check_hp_ports
from ..hdl.attention.parameters import (MAX_COLS, MAX_KEYS, MAX_ROWS, AttentionUnitParameters,
                                        Phase, check_heads)
from ..hdl.common.checks import check_int
from ..hdl.eltwise.parameters import EltwiseParameters
from ..hdl.eltwise.unit import ElementwiseUnit
from ..hdl.matmul.parameters import LIMITS, EngineKind, TlmmParameters
from ..sim.jobs.attention import AttentionJob
from ..sim.models.bitnet import check_head_format

__all__ = ["EngineConfig", "EltwiseConfig", "AttentionConfig", "AcceleratorConfig",
           "DesignConfig", "ENGINES", "load_config"]

#: the engine kinds by name (the ``--engine`` choices and the reports' keys)
ENGINES = {kind.value: kind for kind in EngineKind}


@dataclass(frozen=True)
class EngineConfig:
    """The ``[tlmm]`` section: the parameters of the three ternary matmul engines (see
    :class:`~ternforge.hdl.matmul.parameters.TlmmParameters`), all of the same throughput.

    Members
    -------
    group_size, groups_per_cycle, rows, act_width, max_k, max_tokens : int
        The engines' parameters.
    max_n : int
        Most output rows of a job (the LUT-RAM engine's accumulator depth).
    table_tokens : int
        The LUT-RAM engine's token tile (``max_tokens`` of that engine): tables of this many
        tokens share a bank, so each weight beat is reused this many times, at the price of
        deeper (and past 32 entries, costlier) LUT-RAM.
    """

    # the engines' defaults, and a default max_n for the LUT-RAM engine
    group_size: int = TlmmParameters.group_size
    groups_per_cycle: int = TlmmParameters.groups_per_cycle
    rows: int = TlmmParameters.rows
    act_width: int = TlmmParameters.act_width
    max_k: int = TlmmParameters.max_k
    max_tokens: int = TlmmParameters.max_tokens
    max_n: int = 8192
    table_tokens: int = 1

    def __post_init__(self):
        check_int("Table tokens", self.table_tokens, 1, LIMITS["max_tokens"])
        for kind in ("tlmm", "tlmm-lutram"):  # validates every parameter by the engines' rules
            self.parameters(kind)

    def parameters(self, kind: str = "tlmm") -> TlmmParameters:
        """The parameters of the engine of ``kind`` (``"tlmm"``, ``"tlmm-lutram"`` or
        ``"adder"``): the LUT-RAM engine's token tile is ``table_tokens`` and only it is
        bounded by ``max_n``."""
        table = kind == EngineKind.TLMM_LUTRAM.value
        return TlmmParameters(
            kind=kind, group_size=self.group_size, groups_per_cycle=self.groups_per_cycle,
            rows=self.rows, act_width=self.act_width, max_k=self.max_k,
            max_tokens=self.table_tokens if table else self.max_tokens,
            max_n=self.max_n if table else None)


@dataclass(frozen=True)
class EltwiseConfig:
    """Parameters of the element-wise unit (see :class:`~ternforge.hdl.eltwise.unit
    .ElementwiseUnit`).

    Members
    -------
    format : str
        Arithmetic format: ``float32`` (default), ``float16`` or ``bfloat16``.
    hidden : int
        The model's hidden size: the longest token vector, so the depth of the unit's two
        token buffers (default 1536, BitNet b1.58 0.7B).
    acc_width : int
        Bits of the matmul accumulators it takes.
    """

    format: str = "float32"
    hidden: int = 1536
    acc_width: int = 32

    def __post_init__(self):
        self.parameters  # validates every parameter

    @property
    def parameters(self):
        """The unit's :class:`~ternforge.hdl.eltwise.parameters.EltwiseParameters`: its
        stages, buffers, latency and cycle model."""
        return EltwiseParameters(self.format, max_length=self.hidden, acc_width=self.acc_width)

    def component(self):
        """A new :class:`~ternforge.hdl.eltwise.unit.ElementwiseUnit` of :attr:`parameters`."""
        return ElementwiseUnit(self.parameters)


@dataclass(frozen=True)
class AttentionConfig:
    """Parameters of the attention units, a prefill and a decode
    :class:`~ternforge.hdl.attention.layer.LayerAttention` (each with its sequencer).

    Members
    -------
    format : str
        Arithmetic format: ``float32`` (default), ``float16`` or ``bfloat16``.
    head_dim, heads, kv_heads : int
        The model's attention shape (default BitNet b1.58 0.7B: D = 96, 16 heads, 16 KV
        heads). Decode tiles hold the ``heads / kv_heads`` query heads of a KV head.
    rows : int
        Query rows of a prefill tile.
    cols : int
        Keys per tile (raised, in multiples of the lanes, until the fmas never wait).
    prefill_lanes, decode_lanes : int
        Parallel fmas of each unit (default 4 and 8: decode sets the tokens per second).
    max_keys : int
        The longest context (the KV cache's rows per KV head; rounded up to a power of
        two, at least 1,024).
    """

    format: str = "float32"
    head_dim: int = 96
    heads: int = 16
    kv_heads: int = 16
    rows: int = 8
    cols: int = 8
    prefill_lanes: int = 4
    decode_lanes: int = 8
    max_keys: int = 2048

    def __post_init__(self):
        check_heads(self.heads, self.kv_heads)
        self.jobs()  # validates every parameter

    def jobs(self) -> dict:
        """``{"prefill": job, "decode": job}``: the two units as
        :class:`~ternforge.sim.jobs.attention.AttentionJob` (sequenced)."""
        return {phase.value: AttentionJob(AttentionUnitParameters.for_problem(
                    phase, self.head_dim, self.max_keys, self.heads // self.kv_heads,
                    self.format, rows=self.rows, cols=self.cols,
                    lanes=getattr(self, f"{phase.value}_lanes")), sequenced=True)
                for phase in Phase}


@dataclass(frozen=True)
class AcceleratorConfig:
    """The ``[accelerator]`` section: what the accelerator of a model (``ternforge generate``,
    ``perf``) has of its own. Its GEMV engine is the ``[tlmm]`` section's group size, groups
    per cycle and rows; its one attention engine serves both prefill and decode, in float32
    (the vector and RoPE units' format), with the tile and lanes below, on ``hp_ports`` HP
    ports. The defaults are the fastest BitNet b1.58 decode of ``benchmarks/sweep_bench.py``
    and ``benchmarks/perf_bench.py`` that the board holds: all four HP ports, a tile of the
    query heads one KV head serves (one, for 0.7B), and on the kv260 eight attention lanes
    (the most that 0.7B's head dimension of 96 takes on a tile of 64 keys, without waits) and
    two vector lanes; on a board of twice its LUTs (the zcu104) sixteen attention lanes, tiles
    of 128 keys, four vector lanes (:func:`~ternforge.gen.accelerator.default_attention`,
    :func:`~ternforge.gen.accelerator.default_vector_lanes`).

    Members
    -------
    attention_rows : int or None
        Query rows of the attention engine's tile (1 to 64): a prefill tile's tokens, and at
        least a decode job's, the query heads of one KV head. None (the default): the
        model's query heads per KV head.
    attention_cols : int or None
        Keys per tile (1 to 128, a multiple of the lanes). None (the default): the board's
        (64 on the kv260).
    attention_lanes : int or None
        Parallel fmas (at most the float32 elements a bus word carries: 4 a 128-bit HP
        port; a power of two dividing the head dimension; with parts of at most the fma's
        latency, a decode job of few rows waits after each key of its accumulation). None
        (the default): the board's (8 on the kv260), at most what the bus and the head
        dimension take.
    context : int
        Tokens the KV cache holds (2 to 1,048,576; at most the model's own).
    hp_ports : int
        The board's 128-bit HP ports the accelerator reads DDR through (1, 2 or 4): its bus
        is as many times 128 bits wide, striped over them.
    lm_head : str
        The format the host holds the LM head's matrix in (it runs on the board's cores, as
        TeLLMe's does): ``float32``, ``bfloat16`` or ``int8``
        (:func:`~ternforge.sim.models.bitnet.head_logits`; its accuracy in the README).
    vector_lanes : int or None
        Elements the vector unit (the element-wise work) takes a cycle: a power of two, at
        most a quarter of the float32 elements of a bus word (two operands a cycle in half
        the bus: one an HP port), dividing the model's hidden and FFN sizes. None (the
        default): the board's, on the kv260 two for 0.7B and one for 2B4T, so that each
        default fits it.
        Its RMSNorm keeps seven partial sums of squares a lane, so the lanes are part of what
        the accelerator computes (its golden model's ``vector_lanes``).
    """

    attention_rows: int | None = None
    attention_cols: int | None = None
    attention_lanes: int | None = None
    context: int = 2048
    hp_ports: int = 4
    lm_head: str = "bfloat16"
    vector_lanes: int | None = None

    def __post_init__(self):
        # (the tile and lanes against each other and the model's head dimension are the
        # engine's rules, checked when the accelerator of a model is built)
        for name in ("attention_cols", "attention_lanes"):
            if getattr(self, name) is not None:
                check_int(name.replace("_", " ").capitalize(), getattr(self, name), 1,
                          MAX_COLS)
        if self.attention_rows is not None:
            check_int("Attention rows", self.attention_rows, 1, MAX_ROWS)
        check_int("Context", self.context, 2, MAX_KEYS)
        check_hp_ports(self.hp_ports)  # (the bus's width is the accelerator's, from them)
        check_head_format(self.lm_head)
        if self.vector_lanes is not None:
            check_int("Vector lanes", self.vector_lanes, 1, 16)


#: configuration section -> its parameters' class
SECTIONS = {"tlmm": EngineConfig, "eltwise": EltwiseConfig, "attention": AttentionConfig,
            "accelerator": AcceleratorConfig}


@dataclass(frozen=True)
class DesignConfig:
    """A whole generated design: the target board and the units' parameters.

    Members
    -------
    board : str
        Board name (see ``ternforge boards``).
    tlmm : EngineConfig
        Parameters of the TLMM engine and its baseline.
    eltwise : EltwiseConfig
        Parameters of the element-wise unit.
    attention : AttentionConfig
        Parameters of the prefill and decode attention units.
    accelerator : AcceleratorConfig
        What the accelerator of a model has of its own.
    """

    board: str = "kv260"
    tlmm: EngineConfig = field(default_factory=EngineConfig)
    eltwise: EltwiseConfig = field(default_factory=EltwiseConfig)
    attention: AttentionConfig = field(default_factory=AttentionConfig)
    accelerator: AcceleratorConfig = field(default_factory=AcceleratorConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def to_toml(self) -> str:
        lines = [f'board = "{self.board}"']
        for section in SECTIONS:
            lines += ["", f"[{section}]"]
            lines += [f"{key} = {json.dumps(value)}"  # (None is a default TOML cannot say)
                      for key, value in dataclasses.asdict(getattr(self, section)).items()
                      if value is not None]
        return "\n".join(lines) + "\n"

    @classmethod
    def from_dict(cls, values: dict) -> "DesignConfig":
        if not isinstance(values, dict):
            raise ValueError(f"Configuration must be a table of board and sections, "
                             f"not {values!r}")
        unknown = set(values) - {"board", *SECTIONS}
        if unknown:
            raise ValueError(f"Configuration keys must be board, {', '.join(SECTIONS)}, "
                             f"not {sorted(unknown)!r}")
        board = values.get("board", "kv260")
        if not isinstance(board, str):
            raise ValueError(f"Board must be a name, not {board!r}")
        sections = {}
        for section, kind in SECTIONS.items():
            parameters = values.get(section, {})
            if not isinstance(parameters, dict):
                raise ValueError(f"{section} must be a table of parameters, not {parameters!r}")
            known = {f.name for f in dataclasses.fields(kind)}
            if set(parameters) - known:
                raise ValueError(f"{section} keys must be among {sorted(known)}, "
                                 f"not {sorted(set(parameters) - known)!r}")
            sections[section] = kind(**parameters)
        return cls(board=board, **sections)

    def replace(self, dotted: str, value) -> "DesignConfig":
        """A copy with one parameter changed, named as ``tlmm.rows``, ``eltwise.hidden`` or
        ``board``."""
        section, _, name = dotted.partition(".")
        if section == "board" and not name:
            return dataclasses.replace(self, board=value)
        if section not in SECTIONS or name not in {
                f.name for f in dataclasses.fields(SECTIONS[section])}:
            raise ValueError(f"Parameter must be board or <section>.<name> of "
                             f"{', '.join(SECTIONS)}, not {dotted!r}")
        return dataclasses.replace(self, **{section: dataclasses.replace(
            getattr(self, section), **{name: value})})


def load_config(path: Path) -> DesignConfig:
    """Read a TOML (``.toml``) or JSON (anything else) configuration file."""
    try:
        text = Path(path).read_text()
        values = tomllib.loads(text) if Path(path).suffix == ".toml" else json.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"Configuration file must be readable TOML or JSON, not {str(path)!r} "
                         f"({type(error).__name__})") from None
    return DesignConfig.from_dict(values)
