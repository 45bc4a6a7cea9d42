"""CJ/T 188-2004 water, heat and gas meter frames, sans-I/O.

``decode``/``encode`` convert between bytes and :class:`Frame`; ``readings`` types the 901F
replies (water/gas and heat layouts, optional unit-first vendor layout); ``messages`` builds the
standard exchanges; ``StreamDecoder`` cuts frames out of a byte stream; ``describe`` names
every field for reports.
"""

from protocols.cjt188.describe import describe, describe_frame, reading_dict
from protocols.cjt188.frame import (
    DI_NAMES,
    FUNCTION_NAMES,
    METER_TYPES,
    READ,
    READ_ADDRESS,
    READ_ADDRESS_DI,
    READ_DATA_DI,
    UNITS,
    WILDCARD,
    WILDCARD_TYPE,
    WRITE,
    Address,
    CJT188Error,
    DIOrder,
    Frame,
    decode,
    di_wire,
    encode,
    meter_class,
    unit_name,
)
from protocols.cjt188.messages import (
    error_reply,
    read_address_reply,
    read_address_request,
    read_reply,
    read_request,
    write_reply,
    write_request,
)
from protocols.cjt188.readings import (
    HeatReading,
    Quantity,
    Reading,
    WaterReading,
    decode_heat,
    decode_water,
    encode_reading,
    layout_for,
    parse_reading,
)
from protocols.cjt188.stream import StreamDecoder

__all__ = [
    "DI_NAMES",
    "FUNCTION_NAMES",
    "METER_TYPES",
    "READ",
    "READ_ADDRESS",
    "READ_ADDRESS_DI",
    "READ_DATA_DI",
    "UNITS",
    "WILDCARD",
    "WILDCARD_TYPE",
    "WRITE",
    "Address",
    "CJT188Error",
    "DIOrder",
    "Frame",
    "HeatReading",
    "Quantity",
    "Reading",
    "StreamDecoder",
    "WaterReading",
    "decode",
    "decode_heat",
    "decode_water",
    "describe",
    "describe_frame",
    "di_wire",
    "encode",
    "encode_reading",
    "error_reply",
    "layout_for",
    "meter_class",
    "parse_reading",
    "read_address_reply",
    "read_address_request",
    "read_reply",
    "read_request",
    "reading_dict",
    "unit_name",
    "write_reply",
    "write_request",
]
