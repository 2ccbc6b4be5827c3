"""Gateways: per-socket sessions, routing hub, aiohttp endpoint, and the GatewayActor shell.

Import ``sacsock_actors.gateways.actor`` explicitly: it needs Ray; the rest does not.
"""
