import pytest

from sacsock_actors import ConfigError
from sacsock_actors.cli import _parser, load_app


def test_load_app_from_cwd(tmp_path, monkeypatch):
    (tmp_path / "someapp.py").write_text(
        "from sacsock_actors import SocketServer\nserver = SocketServer()\nother = 3\n"
    )
    monkeypatch.chdir(tmp_path)
    server, module = load_app("someapp:server")
    assert module.__name__ == "someapp"
    with pytest.raises(ConfigError, match="not a SocketServer"):
        load_app("someapp:other")


def test_load_app_needs_module_and_attr():
    with pytest.raises(ConfigError, match="MODULE:ATTR"):
        load_app("justmodule")


def test_serve_flags_parse():
    args = _parser().parse_args(
        ["serve", "app:server", "--port", "9000", "--gateways", "2", "--allowed-origin", "*"]
    )
    assert (args.app, args.port, args.gateways, args.allowed_origin) == ("app:server", 9000, 2, ["*"])


def test_version_flag_prints_the_package_version(capsys):
    import importlib.metadata

    import sacsock_actors
    from sacsock_actors.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"sacsock {sacsock_actors.__version__}"
    # the installed metadata says the same (pyproject reads the version from _version.py)
    assert importlib.metadata.version("sacsock_actors") == sacsock_actors.__version__


def test_demo_serves_the_packaged_app_and_page():
    from sacsock_actors import SocketServer, demo

    server, module = load_app(demo.APP)
    assert isinstance(server, SocketServer) and module.__name__ == "sacsock_actors.demo.app"
    assert (demo.STATIC_DIR / "index.html").is_file()


def test_production_flags_parse_and_default_off():
    from sacsock_actors.cli import _options

    args = _parser().parse_args(["serve", "app:server"])
    assert (args.metrics_port, args.access_log, args.drain_timeout) == (None, False, 30.0)
    assert "access_log" not in _options(args)
    args = _parser().parse_args(
        ["serve", "app:server", "--metrics-port", "9100", "--metrics-host", "0.0.0.0",
         "--access-log", "--drain-timeout", "5", "--host", "node"]
    )
    got = (args.metrics_port, args.metrics_host, args.drain_timeout, args.host)
    assert got == (9100, "0.0.0.0", 5.0, "node")
    assert _options(args)["access_log"] is True
