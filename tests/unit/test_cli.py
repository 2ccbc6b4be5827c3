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


# ---- gRPC bridge flags (no Ray: the bridge object is built, not started) ----------------------


def _grpc(argv, monkeypatch, env=None):
    from sacsock_actors.cli import GRPC_KEY_ENV, _grpc_bridge

    monkeypatch.delenv(GRPC_KEY_ENV, raising=False)
    for k, v in (env or {}).items():
        monkeypatch.setenv(k, v)
    return _grpc_bridge(_parser().parse_args(["serve", "app:server", *argv]))


@pytest.fixture
def pem(tmp_path):
    pytest.importorskip("grpc")
    from grpc_certs import make_cert

    return make_cert(tmp_path)


def test_grpc_flags_build_a_secure_bridge_with_the_key_from_a_file(tmp_path, pem, monkeypatch):
    key = tmp_path / "key"
    key.write_bytes(b"k" * 32 + b"\n")
    bridge = _grpc(["--grpc-listen", "0.0.0.0:30001", "--grpc-peer", "cn@10.0.0.2:30001",
                    "--grpc-peer", "10.0.0.3:30001", "--grpc-cert", pem.cert, "--grpc-key", pem.key,
                    "--grpc-shared-key-file", str(key)], monkeypatch)
    assert [p.spec for p in bridge.peers] == ["cn@10.0.0.2:30001", "10.0.0.3:30001"]
    assert not bridge.insecure and bridge._shared_key == b"k" * 32  # the newline dropped
    assert "k" * 32 not in repr(bridge)


def test_grpc_key_from_the_environment(pem, monkeypatch):
    from sacsock_actors.cli import GRPC_KEY_ENV

    bridge = _grpc(["--grpc-listen", "127.0.0.1:1", "--grpc-cert", pem.cert, "--grpc-key", pem.key],
                   monkeypatch, {GRPC_KEY_ENV: "from-env-" + "x" * 30})
    assert bridge._shared_key == ("from-env-" + "x" * 30).encode()


def test_grpc_without_a_key_says_what_to_do(pem, monkeypatch, tmp_path):
    with pytest.raises(ConfigError, match="shared key.*--grpc-shared-key-file or SACSOCK_GRPC_SHARED_KEY"):
        _grpc(["--grpc-listen", "127.0.0.1:1", "--grpc-cert", pem.cert, "--grpc-key", pem.key], monkeypatch)
    empty = tmp_path / "empty"
    empty.write_bytes(b"\n")
    with pytest.raises(ConfigError, match="is empty"):
        _grpc(["--grpc-listen", "127.0.0.1:1", "--grpc-shared-key-file", str(empty)], monkeypatch)


def test_a_key_given_in_place_of_the_key_file_is_not_echoed(monkeypatch):
    with pytest.raises(ConfigError, match="cannot read the file") as err:
        _grpc(["--grpc-listen", "127.0.0.1:1", "--grpc-shared-key-file", "s3cret-value"], monkeypatch)
    assert "s3cret" not in str(err.value)


def test_grpc_insecure(monkeypatch, caplog):
    pytest.importorskip("grpc")
    with caplog.at_level("WARNING"):
        bridge = _grpc(["--grpc-listen", "127.0.0.1:1", "--grpc-peer", "h:2", "--grpc-insecure"], monkeypatch)
    assert bridge.insecure and "INSECURE" in caplog.text


def test_grpc_options_without_listen_are_refused(monkeypatch, tmp_path):
    from sacsock_actors.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "app.py").write_text("from sacsock_actors import SocketServer\nserver = SocketServer()\n")
    assert main(["serve", "app:server", "--grpc-peer", "h:1"]) == 2
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


def test_gateway_transport_flag():
    from sacsock_actors.cli import _options

    assert "gateway_transport" not in _options(_parser().parse_args(["serve", "app:server"]))
    args = _parser().parse_args(["serve", "app:server", "--gateway-transport", "ray"])
    assert _options(args)["gateway_transport"] == "ray"
    with pytest.raises(SystemExit):
        _parser().parse_args(["serve", "app:server", "--gateway-transport", "udp"])
