"""The benchmark app on sacsock_actors (the same app as bench/baseline_aiohttp.py).

    join  room        -> join it, emit "joined" (room) back
    pub   room|data   -> roomcast "m" (data, bytes) to room
    echo  data        -> emit "echo" (data, bytes) back

Handlers are async, so they run on the gateway's event loop (no thread hop).
``cd bench/servers && sacsock serve sacsock_app:server`` serves it too.
"""

from __future__ import annotations

from sacsock_actors import SocketServer

server = SocketServer()


@server.on("join")
async def join(socket, data: bytes) -> None:
    room = data.decode()
    socket.join(room)
    socket.emit("joined", room)


@server.on("pub")
async def pub(socket, data: bytes) -> None:
    room, _, body = data.partition(b"|")
    socket.roomcast(room.decode(), "m", body)


@server.on("echo")
async def echo(socket, data: bytes) -> None:
    socket.emit("echo", data)


# ---- diagnostics (not part of the benchmarked path) ----------------------------------------

_diag: dict = {}


@server.on("diag")
async def diag(socket, data: bytes) -> None:
    """``diag start``: begin recording GC pauses and event-loop lag in this gateway;
    ``diag read``: emit what was recorded since (as JSON)."""
    import asyncio
    import gc
    import time

    if data == b"start":
        _diag.clear()
        _diag.update(gc_pauses=[], lag=[], t0=time.perf_counter())

        def on_gc(phase: str, info: dict) -> None:
            if phase == "start":
                _diag["gc_start"] = time.perf_counter()
            elif "gc_start" in _diag:
                _diag["gc_pauses"].append((info["generation"], time.perf_counter() - _diag.pop("gc_start")))

        if on_gc not in gc.callbacks:
            gc.callbacks[:] = [cb for cb in gc.callbacks if getattr(cb, "__name__", "") != "on_gc"]
            gc.callbacks.append(on_gc)

        async def lag() -> None:
            while "lag" in _diag:
                t = time.perf_counter()
                await asyncio.sleep(0.001)
                late = time.perf_counter() - t - 0.001
                _diag["lag"].append(late)
                if late > 0.005:
                    _diag.setdefault("big", []).append((round(t - _diag["t0"], 3), round(1000 * late, 1)))

        _diag["task"] = asyncio.get_running_loop().create_task(lag())
        socket.emit("diag", "started")
        return
    pauses = _diag.get("gc_pauses", [])
    lags = sorted(_diag.get("lag", []))
    by_gen = {g: [p for gg, p in pauses if gg == g] for g in (0, 1, 2)}
    out = {
        "seconds": time.perf_counter() - _diag.get("t0", time.perf_counter()),
        "gc": {g: {"n": len(v), "total_ms": 1000 * sum(v), "max_ms": 1000 * max(v, default=0)}
               for g, v in by_gen.items()},
        "gc_thresholds": gc.get_threshold(), "gc_enabled": gc.isenabled(),
        "gc_tracked_objects": len(gc.get_objects()),
        "loop_lag_ms": {"n": len(lags), "p50": 1000 * lags[len(lags) // 2] if lags else None,
                        "p99": 1000 * lags[int(len(lags) * 0.99)] if lags else None,
                        "max": 1000 * lags[-1] if lags else None},
        "lags_over_5ms_at_s_ms": _diag.get("big", [])[:60],
    }
    socket.emit("diag", out)
