"""The chat demo shipped inside the package; ``sacsock demo`` serves it from any directory.

- :data:`APP`: the handler module's ``MODULE:ATTR`` (``sacsock_actors.demo.app:server``).
- :data:`STATIC_DIR`: its page (``index.html``, ``chat.js``, ``style.css``).

The same, by hand: ``sacsock serve sacsock_actors.demo.app:server --static "$(python -c
'import sacsock_actors.demo as d; print(d.STATIC_DIR)')"``.
"""

from __future__ import annotations

from pathlib import Path

APP = "sacsock_actors.demo.app:server"
STATIC_DIR = Path(__file__).resolve().parent / "static"

__all__ = ["APP", "STATIC_DIR"]
