"""Room membership: the pure tables (``table``) and the RoomShardActor (``actor``)."""

from .table import RoomTable, ShardTable, shard_for

__all__ = ["RoomTable", "ShardTable", "shard_for"]
