"""The ``labsupport`` console command."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from labsupport import __version__, cli, doctor

CONSOLE_SCRIPT = Path(sys.executable).parent / "labsupport"


def test_console_script_reports_its_version():
    result = subprocess.run([str(CONSOLE_SCRIPT), "--version"], capture_output=True, text=True,
                            check=True, timeout=60)
    assert result.stdout.strip() == f"labsupport {__version__}"


def test_help_lists_the_commands(capsys):
    assert cli.main([]) == 0
    assert "doctor" in capsys.readouterr().out


def test_doctor_passes_in_the_lab_environment(capsys):
    assert cli.main(["doctor"]) == 0
    assert "All good." in capsys.readouterr().out


def test_doctor_fails_where_the_widget_extension_is_missing(tmp_path):
    report = doctor.diagnose(prefix=tmp_path)
    assert not report.ok
    assert "missing" in report.render()


def test_doctor_finds_the_extension_where_it_is_installed(tmp_path):
    installed = Path(sys.prefix) / doctor.WIDGET_EXTENSION
    shutil.copytree(installed / "static", tmp_path / doctor.WIDGET_EXTENSION / "static",
                    dirs_exist_ok=True)
    assert doctor.diagnose(prefix=tmp_path).ok
