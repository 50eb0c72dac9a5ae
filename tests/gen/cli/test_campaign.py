"""A campaign of bad arguments against every command of the command line.

Each case takes a valid invocation of one command (small valid ``.npy`` inputs, a writable
output) and spoils exactly one argument: an integer option set to 0, -1, 10**12, ``abc`` or
``1.5``; a float option to 0, a negative, ``abc``, ``nan`` or ``inf``; an input file missing,
a folder, a text file or an array of the wrong dtype or shape; an output that is a folder, under
a file, read-only or one of the inputs; a bad ``--config``, ``--board``, ``--layer`` or
``--param``. Every case must be refused the way :func:`ternforge.gen.cli.main` promises:

- exit status 2 and exactly one line on stderr, starting with ``ternforge: ``;
- no traceback on stdout or stderr;
- nothing written: no output file or folder, no new file anywhere in the test's folder (which
  also holds the caches and the temporary folder), and every file that was there (inputs
  included) byte for byte as it was;
- no tool reached: Verilator, cocotb, Yosys, synthesis and elaboration are replaced by stubs
  that raise, so a bad argument must be refused before any of them starts.

:func:`test_each_base_invocation_is_valid` checks that each unspoilt invocation does reach a
tool (or succeeds, for the commands that run none), so that a refusal in the campaign is the
work of the one spoilt argument.
"""

from __future__ import annotations

import os
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from cli_support import invoke
from ternforge.gen.cli import _common

HUGE = str(10 ** 12)

#: a case that runs this long is doing work it should have refused
CASE_SECONDS = 5


class CaseTimeout(BaseException):
    """Raised by the alarm; a BaseException, so that the command line's own handlers (which
    turn any Exception into one line) do not swallow it."""


# ---------------------------------------------------------------------------------------------
# the folder each case runs in (also its working directory, so that default outputs land in it)

def _floats(rng, shape):
    return rng.standard_normal(shape).astype(np.float32)


def _write_files(root: Path) -> None:
    rng = np.random.default_rng(11)
    arrays = {
        # run tlmm / run gemv: ternary weights (N, K), int8 activations (M, K)
        "w.npy": rng.integers(-1, 2, (6, 20)).astype(np.int8),
        "x.npy": rng.integers(-128, 128, (3, 20)).astype(np.int8),
        # run mac: signed 8-bit A (M, K) and B (K, N)
        "a.npy": rng.integers(-128, 128, (2, 3)),
        "b.npy": rng.integers(-128, 128, (3, 2)),
        # run fp (fma): three float32 arrays of one shape
        "fa.npy": _floats(rng, (4,)), "fb.npy": _floats(rng, (4,)), "fc.npy": _floats(rng, (4,)),
        # run eltwise: unit (2 tokens of 8), rope (d = 8), silu
        "acc.npy": rng.integers(-9000, 9000, (2, 8)).astype(np.int32),
        "act_scale.npy": np.float32([0.01, 0.02]),
        "weight_scale.npy": np.float32([0.5]),
        "residual.npy": _floats(rng, (2, 8)),
        "gain.npy": _floats(rng, (8,)),
        "ex.npy": _floats(rng, (2, 8)),
        "cos.npy": _floats(rng, (2, 4)), "sin.npy": _floats(rng, (2, 4)),
        "gate.npy": _floats(rng, (2, 8)), "up.npy": _floats(rng, (2, 8)),
        # run attention (prefill): Q (2, 5, 16), K and V (1, 5, 16)
        "q.npy": _floats(rng, (2, 5, 16)), "k.npy": _floats(rng, (1, 5, 16)),
        "v.npy": _floats(rng, (1, 5, 16)),
        # spoilt inputs: the wrong dtype, the wrong shape
        "floats.npy": rng.standard_normal((3, 20)),
        "ints.npy": rng.integers(-3, 3, (3, 20)).astype(np.int32),
        "ints3d.npy": rng.integers(-3, 3, (2, 5, 16)).astype(np.int32),
        "flat_ints.npy": rng.integers(-1, 2, 20).astype(np.int8),
        "flat_floats.npy": _floats(rng, (20,)),
        "floats2d.npy": _floats(rng, (2, 16)),
        # an existing output that must not be written (see `read_only`)
        "ro.npy": np.zeros(3, np.int32),
    }
    for name, array in arrays.items():
        np.save(root / name, array)
    (root / "notes.txt").write_text("not an array, not a configuration\n")
    (root / "adir").mkdir()
    (root / "locked").mkdir()  # read-only (see `read_only`)
    configs = {
        "good.toml": 'board = "kv260"\n',
        # an engine whose GEMV cycle model takes the tiny model's projections
        "tiny.toml": "[tlmm]\ngroups_per_cycle = 4\nrows = 8\n[accelerator]\nhp_ports = 1\n",
        "garbage.toml": "this is = = not TOML\n",
        "five.json": "5",
        "attention_rows_0.toml": "[attention]\nrows = 0\n",
        "attention_rows_str.toml": '[attention]\nrows = "8"\n',
        "tlmm_rows_str.toml": '[tlmm]\nrows = "16"\n',
        "tlmm_group_size_float.toml": "[tlmm]\ngroup_size = 2.5\n",
        "tlmm_max_k_bool.toml": "[tlmm]\nmax_k = true\n",
        "tlmm_unknown_key.toml": "[tlmm]\nspeed = 1\n",
        "eltwise_hidden_str.toml": '[eltwise]\nhidden = "1536"\n',
        "eltwise_hidden_0.toml": "[eltwise]\nhidden = 0\n",
        "eltwise_format_int.toml": "[eltwise]\nformat = 32\n",
        "board_int.toml": "board = 5\n",
    }
    for name, text in configs.items():
        (root / name).write_text(text)


#: paths (relative to the folder) the stubbed ``os.access`` says cannot be written: the test
#: runs as root, who may write anywhere, so read-only is emulated as in test_common.py
READ_ONLY = ("locked", "ro.npy")


def _snapshot(root: Path) -> dict:
    """Every file and folder under ``root``: its bytes, or ``None`` for a folder."""
    return {str(path.relative_to(root)): None if path.is_dir() else path.read_bytes()
            for path in sorted(root.rglob("*"))}


# ---------------------------------------------------------------------------------------------
# the stubs of every tool

#: (module, name) of every entry point of a tool, patched where it is looked up
TOOLS = [
    ("ternforge.sim.verilator", "build"),
    ("ternforge.sim.verilator", "run"),
    ("cocotb_tools.runner", "get_runner"),
    ("ternforge.gen.synthesis", "synthesize"),
    ("ternforge.gen.synthesis", "_run_yosys"),
    ("ternforge.gen.reports.attention", "synthesize"),
    ("ternforge.gen.reports.design", "synthesize"),
    ("ternforge.gen.reports.eltwise", "synthesize"),
    ("ternforge.gen.reports.fp", "synthesize"),
    ("ternforge.gen.reports.mac", "synthesize"),
    # elaboration: Verilog goes through Yosys, and either is the first step of the long work
    ("amaranth.back.verilog", "convert"),
    ("amaranth.back.rtlil", "convert"),
    ("ternforge.gen.elaborate", "to_verilog"),
    ("ternforge.gen.elaborate", "to_rtlil"),
    ("ternforge.gen.cli.tlmm", "to_verilog"),
    ("ternforge.gen.cli.design", "to_verilog"),
    ("ternforge.gen.reports.design", "to_rtlil"),
]


@pytest.fixture(autouse=True)
def reached(monkeypatch, tmp_path):
    """Stub every tool (a call raises AssertionError and is recorded in the list returned);
    point the caches and the temporary folder into the test's folder."""
    import importlib

    calls = []
    # every module imported before any is patched: a module first imported under a patch
    # would keep the stub it imported by name after the patch is undone
    modules = [importlib.import_module(module) for module, _ in TOOLS]
    for (module, name), loaded in zip(TOOLS, modules):
        def stub(*args, _tool=f"{module}.{name}", **kwargs):
            calls.append(_tool)
            raise AssertionError(f"reached a tool: {_tool}")
        monkeypatch.setattr(loaded, name, stub)
    monkeypatch.setenv("TERNFORGE_CACHE", str(tmp_path / "cache"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    return calls


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """The folder a case runs in: its inputs, spoilt inputs and configurations; also the
    working directory; ``READ_ONLY`` paths in it cannot be written."""
    root = tmp_path / "work"
    root.mkdir()
    _write_files(root)
    monkeypatch.chdir(root)
    denied = {(root / name).resolve() for name in READ_ONLY}
    access = os.access

    def stub_access(path, mode, *args, **kwargs):
        if mode & os.W_OK and Path(path).resolve() in denied:
            return False
        return access(path, mode, *args, **kwargs)
    monkeypatch.setattr(_common.os, "access", stub_access)
    return root


@pytest.fixture
def alarm():
    def expire(signum, frame):
        raise CaseTimeout(f"the case ran for more than {CASE_SECONDS} s")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(CASE_SECONDS)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


# ---------------------------------------------------------------------------------------------
# the valid invocations, and what each option is

@dataclass(frozen=True)
class Base:
    name: str          # the command as the ids spell it, e.g. "run-tlmm"
    argv: tuple        # a valid invocation
    options: dict      # option -> its kind (see MUTATIONS)
    runs_tool: bool = True  # the valid invocation reaches a tool (else it succeeds)


def _argv(*words):
    return tuple(words)


BASES = {
    "run tlmm": Base("run-tlmm", _argv(
        "run", "tlmm", "--weights", "w.npy", "--acts", "x.npy", "--out", "y.npy"), {
        "--weights": "int-input", "--acts": "int-input", "--out": "out-file",
        "--group-size": "int", "--rows": "int", "--groups-per-cycle": "int",
        "--max-tokens": "int", "--max-k": "int", "--max-n": "int", "--table-tokens": "int",
        "--engine": "choice"}),
    "run gemv": Base("run-gemv", _argv(
        "run", "gemv", "--weights", "w.npy", "--acts", "x.npy", "--out", "y.npy"), {
        "--weights": "int-input", "--acts": "int-input", "--out": "out-file",
        "--board": "board", "--config": "config",
        # a latency of 0 cycles is valid: MemoryModel documents a non-negative latency
        "--mem-latency": "int-0-valid",
        "--mem-bytes-per-cycle": "positive-float", "--data-bits": "int"}),
    "run mac": Base("run-mac", _argv(
        "run", "mac", "--arch", "systolic", "--a", "a.npy", "--b", "b.npy", "--out", "c.npy"), {
        "--arch": "choice", "--variant": "choice", "--a": "int-input", "--b": "int-input",
        "--out": "out-file", "--width": "int", "--size": "int", "--unsigned": "flag"}),
    "run fp": Base("run-fp", _argv(
        "run", "fp", "--op", "fma", "--dtype", "float32", "--a", "fa.npy", "--b", "fb.npy",
        "--c", "fc.npy", "--out", "fo.npy"), {
        "--op": "choice", "--dtype": "choice", "--a": "float-input", "--b": "float-input",
        "--c": "float-input", "--out": "out-file"}),
    "run eltwise": Base("run-eltwise", _argv(
        "run", "eltwise", "--op", "unit", "--acc", "acc.npy", "--act-scale", "act_scale.npy",
        "--weight-scale", "weight_scale.npy", "--residual", "residual.npy", "--gain",
        "gain.npy", "--out", "hidden.npz"), {
        "--op": "choice", "--dtype": "choice", "--acc": "int-input",
        "--act-scale": "float-input", "--weight-scale": "float-input",
        "--residual": "float-input", "--gain": "float-input", "--out": "out-file",
        # eps = 0 is not spoilt: nothing documents it as invalid, and it is plain RMS
        # normalisation (defined for every non-zero vector)
        "--eps": "float-0-valid"}),
    "run eltwise rope": Base("run-eltwise", _argv(
        "run", "eltwise", "--op", "rope", "--x", "ex.npy", "--cos", "cos.npy", "--sin",
        "sin.npy", "--out", "rope.npy"), {
        "--x": "float-input", "--cos": "float-input", "--sin": "float-input"}),
    "run eltwise silu": Base("run-eltwise", _argv(
        "run", "eltwise", "--op", "silu", "--gate", "gate.npy", "--up", "up.npy", "--out",
        "silu.npy"), {"--gate": "float-input", "--up": "float-input"}),
    "run attention": Base("run-attention", _argv(
        "run", "attention", "--phase", "prefill", "--q", "q.npy", "--k", "k.npy", "--v",
        "v.npy", "--out", "o.npy"), {
        "--phase": "choice", "--q": "attention-input", "--k": "attention-input",
        "--v": "attention-input", "--out": "out-file", "--dtype": "choice", "--rows": "int",
        "--cols": "int", "--lanes": "int"}),
    "run model": Base("run-model", _argv(
        "run", "model", "--prompt", "Hi", "--new-tokens", "2", "--out", "model.json"), {
        "--model": "choice", "--new-tokens": "int", "--out": "out-file"}),
    "report mac": Base("report-mac", _argv("report", "mac"), {
        "--size": "int", "--width": "int", "--unsigned": "flag", "--dsp": "flag",
        "--out": "out-file"}),
    "report fp": Base("report-fp", _argv("report", "fp"), {
        "--dtype": "choice", "--out": "out-file"}),
    "report eltwise": Base("report-eltwise", _argv("report", "eltwise"), {
        "--dtype": "choice", "--hidden": "int", "--board": "board", "--out": "out-file"}),
    "report attention": Base("report-attention", _argv("report", "attention"), {
        "--head-dim": "int", "--heads": "int", "--kv-heads": "int", "--lanes": "int",
        "--dtype": "choice", "--board": "board", "--out": "out-file"}),
    "generate": Base("generate", _argv("generate", "--out", "build"), {
        "--model": "choice", "--jobs": "int", "--board": "board", "--config": "config",
        "--out": "out-folder"}),
    "report units": Base("report-units", _argv("report", "units", "--out", "units"), {
        "--board": "board", "--config": "config", "--out": "out-folder"}),
    "plan": Base("plan", _argv("plan", "--layer", "64,48", "--json", "plan.json"), {
        "--layer": "layer", "--tokens": "int", "--board": "board", "--config": "config",
        # a latency of 0 cycles is valid: MemoryModel documents a non-negative latency
        "--mem-latency": "int-0-valid", "--mem-bytes-per-cycle": "positive-float",
        "--json": "out-file"}, runs_tool=False),
    "sweep": Base("sweep", _argv("sweep", "--param", "tlmm.rows=4", "--out", "sweep"), {
        "--param": "param", "--board": "board", "--config": "config", "--out": "out-folder"}),
    "sweep objectives": Base("sweep-objectives", _argv(
        "sweep", "--model", "tiny", "--config", "tiny.toml", "--param",
        "accelerator.attention_lanes=2", "--objective", "tokens_per_s@128", "--objective", "LUT",
        "--out", "sweep"), {
        "--param": "param", "--objective": "objective", "--model": "choice", "--jobs": "int",
        "--latency": "int", "--board": "board", "--config": "config", "--out": "out-folder",
        "--synthesis": "flag"}),
    "boards": Base("boards", _argv("boards"), {}, runs_tool=False),
}

_INPUTS_OF = {name: [base.argv[i + 1] for i, word in enumerate(base.argv)
                     if word in base.options and base.options[word].endswith("input")]
              for name, base in BASES.items()}

# ---------------------------------------------------------------------------------------------
# the mutations: kind -> [(label, value)]; a value is the option's new argument

_INT = [("0", "0"), ("-1", "-1"), ("10**12", HUGE), ("abc", "abc"), ("1.5", "1.5")]
_FILE = [("missing", "missing.npy"), ("folder", "adir"), ("text", "notes.txt")]
_OUT_FILE = [("folder", "adir"), ("under-a-file", "notes.txt/out.npy"),
             ("read-only-folder", "locked/out.npy"), ("read-only-file", "ro.npy")]
_OUT_FOLDER = [("file", "notes.txt"), ("under-a-file", "notes.txt/out"),
               ("read-only", "locked"), ("under-read-only", "locked/out")]
_CONFIG = [("missing", "missing.toml"), ("folder", "adir"), ("text", "notes.txt"),
           ("bad-toml", "garbage.toml"), ("json-5", "five.json"),
           ("attention.rows=0", "attention_rows_0.toml"),
           ("attention.rows=str", "attention_rows_str.toml"),
           ("tlmm.rows=str", "tlmm_rows_str.toml"),
           ("tlmm.group_size=2.5", "tlmm_group_size_float.toml"),
           ("tlmm.max_k=true", "tlmm_max_k_bool.toml"),
           ("tlmm.speed=1", "tlmm_unknown_key.toml"),
           ("eltwise.hidden=str", "eltwise_hidden_str.toml"),
           ("eltwise.hidden=0", "eltwise_hidden_0.toml"),
           ("eltwise.format=32", "eltwise_format_int.toml"),
           ("board=5", "board_int.toml")]

MUTATIONS = {
    "int": _INT,
    "int-0-valid": [m for m in _INT if m[0] != "0"],
    "positive-float": [("0", "0"), ("-1", "-1"), ("abc", "abc"), ("nan", "nan"),
                       ("inf", "inf")],
    "float-0-valid": [("-1", "-1"), ("abc", "abc"), ("nan", "nan"), ("inf", "inf")],
    "int-input": _FILE + [("float-array", "floats.npy"), ("1-d-array", "flat_ints.npy")],
    "float-input": _FILE + [("int-array", "ints.npy"), ("wrong-shape", "flat_floats.npy")],
    "attention-input": _FILE + [("int-array", "ints3d.npy"), ("2-d-array", "floats2d.npy")],
    "out-file": _OUT_FILE,
    "out-folder": _OUT_FOLDER,
    "config": _CONFIG,
    "board": [("de10", "de10")],
    "choice": [("nosuch", "nosuch")],
    "flag": [("yes", None)],  # --flag=yes: a flag takes no value
    "layer": [("0,64", "0,64"), ("-1,64", "-1,64"), ("abc", "abc"), ("64", "64"),
              ("10**9,10**9", "1000000000,1000000000")],
    "objective": [("nosuch", "nosuch"), ("no-context", "tokens_per_s"),
                  ("context-0", "tokens_per_s@0"), ("past-the-cache", "tokens_per_s@100000"),
                  ("prompt-past-the-cache", "ttft@100000"), ("LUT@8", "LUT@8")],
    "param": [("attention.rows=0", "attention.rows=0"), ("tlmm.rows=abc", "tlmm.rows=abc"),
              ("nosuch.x=1", "nosuch.x=1"), ("tlmm.rows=", "tlmm.rows=")],
}


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple


def _with(argv: tuple, option: str, value) -> tuple:
    """``argv`` with ``option``'s argument replaced by ``value`` (or the option added);
    ``value`` None: the flag given a value (``--flag=yes``)."""
    if value is None:
        return (*argv, f"{option}=yes")
    words = list(argv)
    if option in words:
        words[words.index(option) + 1] = value
        return tuple(words)
    return (*words, option, value)


def _cases():
    cases = []
    for key, base in BASES.items():
        for option, kind in base.options.items():
            for label, value in MUTATIONS[kind]:
                cases.append(Case(f"{base.name}{option}={label}", _with(base.argv, option, value)))
            if kind == "out-file":  # the output is one of the inputs
                inputs = _INPUTS_OF[key] or (["good.toml"] if "--config" in base.options else [])
                for path in inputs:
                    argv = _with(base.argv, option, path)
                    if path == "good.toml":
                        argv = _with(argv, "--config", path)
                    cases.append(Case(f"{base.name}{option}=input-{Path(path).stem}", argv))
    # commands of no options: an extra argument, an unknown option
    cases.append(Case("boards-extra-argument", ("boards", "extra")))
    cases.append(Case("boards--out=x", ("boards", "--out", "x")))
    ids = [case.id for case in cases]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    return cases


CASES = _cases()


# ---------------------------------------------------------------------------------------------
# the tests

@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_bad_argument_is_one_line_and_nothing_else(capsys, tmp_path, workspace, reached, alarm,
                                                     case):
    before = _snapshot(tmp_path)
    code, out, err = invoke(capsys, *case.argv)
    after = _snapshot(tmp_path)
    problems = []
    if reached:
        problems.append(f"reached a tool: {', '.join(reached)}")
    if code != 2:
        problems.append(f"exit status {code!r}, not 2")
    if not (err.startswith("ternforge: ") and err.endswith("\n") and err.count("\n") == 1):
        problems.append(f"stderr is not one line starting with 'ternforge: ' "
                        f"({err.count(chr(10))} lines)")
    if "Traceback" in out or "Traceback" in err:
        problems.append("a traceback")
    created = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(name for name in set(before) & set(after) if before[name] != after[name])
    for what, names in (("created", created), ("removed", removed), ("changed", changed)):
        if names:
            problems.append(f"{what}: {', '.join(names)}")
    assert not problems, (f"ternforge {' '.join(case.argv)}\n  " + "\n  ".join(problems)
                          + f"\n  exit status: {code!r}\n  stdout: {out[-600:]!r}"
                          f"\n  stderr: {err[-600:]!r}")


@pytest.mark.parametrize("key", list(BASES), ids=[key.replace(" ", "-") for key in BASES])
def test_each_base_invocation_is_valid(capsys, workspace, reached, alarm, key):
    """The unspoilt invocation gets as far as a tool (or, running none, succeeds)."""
    base = BASES[key]
    code, out, err = invoke(capsys, *base.argv)
    if base.runs_tool:
        assert reached, (code, out, err)
        assert code == 1 and "reached a tool" in err, (code, out, err)
    else:
        assert code == 0 and not reached, (code, out, err)
