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
