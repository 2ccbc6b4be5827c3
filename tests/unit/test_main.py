"""``python -m sacsock_actors`` is the ``sacsock`` command."""

import subprocess
import sys

import sacsock_actors


def test_python_dash_m_runs_the_cli():
    proc = subprocess.run(
        [sys.executable, "-m", "sacsock_actors", "--version"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"sacsock {sacsock_actors.__version__}"
    bad = subprocess.run(
        [sys.executable, "-m", "sacsock_actors", "serve"], capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 2 and "sacsock serve: error" in bad.stderr


def test_importing_main_does_not_run_the_cli():
    proc = subprocess.run(
        [sys.executable, "-c", "import sacsock_actors.__main__; print('imported')"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "imported", proc.stderr
