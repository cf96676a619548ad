"""hilt wire protocol v1: the contract as data (:mod:`.spec`), the frame codec
(:mod:`.codec`) and the reference device that executes the contract (:mod:`.reference`).
"""

from .codec import (
    Capabilities,
    Frame,
    FrameDecoder,
    FrameError,
    crc16,
    decode_body,
    decode_frame,
    encode_frame,
)
from .spec import PROTOCOL_VERSION, Command, Status

__all__ = [
    "PROTOCOL_VERSION",
    "Capabilities",
    "Command",
    "Frame",
    "FrameDecoder",
    "FrameError",
    "Status",
    "crc16",
    "decode_body",
    "decode_frame",
    "encode_frame",
]
