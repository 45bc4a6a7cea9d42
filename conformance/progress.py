"""Events of a run for whoever started it (``carbench run``), on the file descriptor named by
``CARBENCH_PROGRESS_FD``: a pipe, not stdout, because pytest captures what tests print. One
JSON object per line; without the variable (a plain ``pytest`` run) nothing is written."""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

ENV = "CARBENCH_PROGRESS_FD"


def emit(event: dict[str, Any]) -> None:
    fd = os.environ.get(ENV)
    if not fd:
        return
    # the parent may have gone away (Ctrl-C): the run itself must go on
    with contextlib.suppress(OSError):
        os.write(int(fd), (json.dumps(event, ensure_ascii=False) + "\n").encode("utf-8"))
