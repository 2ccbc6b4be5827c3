from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DataType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STR: _ClassVar[DataType]
    BIN: _ClassVar[DataType]
    JSON: _ClassVar[DataType]
STR: DataType
BIN: DataType
JSON: DataType

class Broadcast(_message.Message):
    __slots__ = ("timestamp", "event", "data", "dataType")
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    DATATYPE_FIELD_NUMBER: _ClassVar[int]
    timestamp: int
    event: str
    data: bytes
    dataType: DataType
    def __init__(self, timestamp: _Optional[int] = ..., event: _Optional[str] = ..., data: _Optional[bytes] = ..., dataType: _Optional[_Union[DataType, str]] = ...) -> None: ...

class Roomcast(_message.Message):
    __slots__ = ("timestamp", "room", "event", "data", "dataType")
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    ROOM_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    DATATYPE_FIELD_NUMBER: _ClassVar[int]
    timestamp: int
    room: str
    event: str
    data: bytes
    dataType: DataType
    def __init__(self, timestamp: _Optional[int] = ..., room: _Optional[str] = ..., event: _Optional[str] = ..., data: _Optional[bytes] = ..., dataType: _Optional[_Union[DataType, str]] = ...) -> None: ...

class Result(_message.Message):
    __slots__ = ("success", "timestamp")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    success: bool
    timestamp: int
    def __init__(self, success: _Optional[bool] = ..., timestamp: _Optional[int] = ...) -> None: ...
