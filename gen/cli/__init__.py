"""The ``ternforge`` command line: the click group and its entry point.

Every command validates its input before it writes anything: bad input is one line on stderr
and exit status 2, and no output file or folder is left behind. Each command lives in the
module of its unit family (:mod:`.design`, :mod:`.tlmm`, :mod:`.mac`, :mod:`.fp`,
:mod:`.eltwise`, :mod:`.attention`, :mod:`.cache`, :mod:`.perf`, :mod:`.power`,
:mod:`.sweep`, :mod:`.test`); what they share is in :mod:`._common`.
"""

from __future__ import annotations

import signal
import sys
import warnings

import click

from ...boards import BoardPluginWarning

from . import attention, cache, design, eltwise, fp, mac, model, perf, power, sweep, test, tlmm

__all__ = ["cli", "main"]


@click.group()
@click.version_option(package_name="ternforge")
def cli():
    """Generate, simulate and measure FPGA accelerators for ternary LLMs."""


@cli.group()
def run():
    """Run a generated unit on Verilator with data from .npy files."""


@cli.group()
def report():
    """Synthesise and compare generated units."""


for _command in (design.boards, design.generate, design.plan, sweep.sweep, cache.cache,
                 perf.perf, power.power, test.test):
    cli.add_command(_command)
for _command in (tlmm.run_tlmm, tlmm.run_gemv, mac.run_mac, fp.run_fp, eltwise.run_eltwise,
                 attention.run_attention, model.run_model):
    run.add_command(_command)
for _command in (design.report_units, mac.report_mac, fp.report_fp, eltwise.report_eltwise,
                 attention.report_attention):
    report.add_command(_command)


def _terminated(signum, frame):
    raise SystemExit(128 + signum)


def main(argv=None):
    """Entry point: click errors and bad input become one line on stderr and exit status 2.

    ``SIGTERM`` ends a command the way Ctrl-C does: its scratch folders are removed and the
    tools it started are ended (see :mod:`ternforge.sim.guard`).
    """
    try:
        previous = signal.signal(signal.SIGTERM, _terminated)
    except ValueError:  # not the main thread: signals are not ours to handle
        previous = None
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning(warnings.showwarning)
            _main(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _one_line_warning(show):
    """``warnings.showwarning`` with a skipped board plugin as one line on stderr."""
    def shown(message, category, *args, **kwargs):
        if issubclass(category, BoardPluginWarning):
            click.echo(f"ternforge: warning: {message}", err=True)
        else:
            show(message, category, *args, **kwargs)
    return shown


def _main(argv):
    try:
        cli.main(args=argv, prog_name="ternforge", standalone_mode=False)
    except click.exceptions.Exit as exit_:
        sys.exit(exit_.exit_code)
    except click.exceptions.Abort:
        click.echo("ternforge: aborted", err=True)
        sys.exit(1)
    except click.ClickException as error:
        click.echo(f"ternforge: {error.format_message()}", err=True)
        sys.exit(2)
    except ValueError as error:
        click.echo(f"ternforge: {error}", err=True)
        sys.exit(2)
    except (RuntimeError, OSError) as error:  # a tool failed: its log holds the details
        lines = str(error).splitlines()
        click.echo(f"ternforge: {lines[0] if lines else repr(error)}", err=True)
        sys.exit(1)
    except Exception as error:  # a defect of ternforge's own: still one line, no traceback
        click.echo(f"ternforge: internal error ({type(error).__name__}: {error}); please "
                   f"report it", err=True)
        sys.exit(1)
