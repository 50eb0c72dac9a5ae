"""Helpers shared by the test modules."""

from ternforge.gen.cli import main


def invoke(capsys, *argv):
    """Run the command line with ``argv``; return (exit status, stdout, stderr)."""
    try:
        main(list(argv))
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err
