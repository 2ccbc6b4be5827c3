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
