"""The ``carbyne`` entry point wires every subcommand module."""
import subprocess
import sys

from carbon import cli


def test_every_subcommand_module_registers_a_parser():
    parser = cli.build_parser()
    actions = [a for a in parser._actions if a.dest == "command"]
    assert actions, "carbyne has no subcommands"
    assert len(actions[0].choices) >= len(cli.SUBCOMMAND_MODULES)


def test_no_command_prints_help_and_fails():
    proc = subprocess.run([sys.executable, "-m", "carbon.cli"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "carbyne" in proc.stdout
