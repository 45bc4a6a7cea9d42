"""Code tables of HJ 212-2017 §6.6: system codes, command codes, return codes, data flags."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class Command(IntEnum):
    """Command codes (CN), HJ 212-2017 表 9 (names follow the table's descriptions)."""

    SET_TIMEOUT_RETRY = 1000
    GET_TIME = 1011  # request; the device's upload of its time uses the same code
    SET_TIME = 1012
    TIME_CALIBRATION_REQUEST = 1013  # device → platform notification
    GET_RTD_INTERVAL = 1061
    SET_RTD_INTERVAL = 1062
    GET_MIN_INTERVAL = 1063
    SET_MIN_INTERVAL = 1064
    SET_PASSWORD = 1072
    REALTIME_DATA = 2011
    STOP_REALTIME_DATA = 2012
    EQUIPMENT_STATUS = 2021
    STOP_EQUIPMENT_STATUS = 2022
    DAY_DATA = 2031
    DAY_RUNTIME_DATA = 2041
    MINUTE_DATA = 2051
    HOUR_DATA = 2061
    RESTART_TIME = 2081
    CALIBRATE = 3011
    SAMPLE_NOW = 3012
    START_CLEANING = 3013
    COMPARISON_SAMPLE = 3014
    OVERLIMIT_SAMPLE = 3015
    SET_SAMPLE_PERIOD = 3016
    GET_SAMPLE_PERIOD = 3017
    GET_SAMPLE_OUTPUT_TIME = 3018
    GET_INSTRUMENT_ID = 3019
    GET_SITE_INFO = 3020
    SET_SITE_PARAMETER = 3021
    REQUEST_ANSWER = 9011  # QnRtn
    EXECUTION_RESULT = 9012  # ExeRtn
    NOTIFICATION_ANSWER = 9013
    DATA_ANSWER = 9014
    HEARTBEAT = 9015  # HJ 212-2025 profile only


#: Requests whose answer carries data uploaded with the request's own QN (表 9 "上传命令").
GET_COMMANDS = frozenset(
    {
        Command.GET_TIME,
        Command.GET_RTD_INTERVAL,
        Command.GET_MIN_INTERVAL,
        Command.GET_SAMPLE_PERIOD,
        Command.GET_SAMPLE_OUTPUT_TIME,
        Command.GET_INSTRUMENT_ID,
        Command.GET_SITE_INFO,
    }
)

#: History requests (BeginTime/EndTime): each record is uploaded with a new QN (flows C.20).
HISTORY_COMMANDS = frozenset(
    {Command.DAY_DATA, Command.DAY_RUNTIME_DATA, Command.MINUTE_DATA, Command.HOUR_DATA}
)

#: Platform → device notifications answered by 9013 (图 10).
PLATFORM_NOTIFICATIONS = frozenset({Command.STOP_REALTIME_DATA, Command.STOP_EQUIPMENT_STATUS})

#: Device → platform notifications answered by 9013 (图 9).
DEVICE_NOTIFICATIONS = frozenset({Command.TIME_CALIBRATION_REQUEST})

ANSWERS = frozenset(
    {
        Command.REQUEST_ANSWER,
        Command.EXECUTION_RESULT,
        Command.NOTIFICATION_ANSWER,
        Command.DATA_ANSWER,
    }
)


class QnRtn(IntEnum):
    """Request answer codes, HJ 212-2017 表 7."""

    READY = 1
    REJECTED = 2
    BAD_PW = 3
    BAD_MN = 4
    BAD_ST = 5
    BAD_FLAG = 6
    BAD_QN = 7
    BAD_CN = 8
    BAD_CRC = 9
    UNKNOWN = 100


class ExeRtn(IntEnum):
    """Execution result codes, HJ 212-2017 表 6."""

    OK = 1
    FAILED = 2
    CONDITION_ERROR = 3
    TIMEOUT = 4
    BUSY = 5
    FAULT = 6
    NO_DATA = 100


class DataFlag(StrEnum):
    """Data flags of HJ 212-2017 表 8 (xxxxxx-Flag)."""

    NORMAL = "N"
    STOPPED = "F"
    MAINTENANCE = "M"
    MANUAL = "S"
    FAULT = "D"
    CALIBRATION = "C"
    OVER_RANGE = "T"
    COMMUNICATION_FAULT = "B"


#: System codes (ST), HJ 212-2017 表 5; the table is extensible, so ST stays a string.
SYSTEM_CODES: dict[str, str] = {
    "21": "surface water quality",
    "22": "air quality",
    "23": "acoustic environment quality",
    "24": "groundwater quality",
    "25": "soil quality",
    "26": "seawater quality",
    "27": "volatile organic compounds",
    "31": "air pollution source",
    "32": "surface water pollution source",
    "33": "groundwater pollution source",
    "34": "marine pollution source",
    "35": "soil pollution source",
    "36": "noise pollution source",
    "37": "vibration pollution source",
    "38": "radioactive pollution source",
    "39": "construction dust source",
    "41": "electromagnetic pollution source",
    "51": "flue-gas process monitoring",
    "52": "wastewater process monitoring",
    "91": "system interaction",
}


def command_name(cn: int) -> str | None:
    try:
        return Command(cn).name.lower()
    except ValueError:
        return None
