"""What the server's logs keep: request lines without their query strings.

A query string may carry what an operator searched for (an e-mail, a phone number) or the reason typed to
see a member's personal data, and access logs are kept and shipped far longer than a request lives. The
access log therefore records the path only, with ``?[redacted]`` where a query was. How long log files are
kept is the deployment's log rotation; Patron itself writes no log file.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from uvicorn.config import LOGGING_CONFIG

__all__ = ["QueryStringFilter", "server_log_config"]

_PATH_ARG = 2  # uvicorn's access record: (client, method, path with query, HTTP version, status)


class QueryStringFilter(logging.Filter):
    """Drops the query string from uvicorn's access log records (keeps the record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        target = args[_PATH_ARG] if isinstance(args, tuple) and len(args) > _PATH_ARG else None
        if isinstance(args, tuple) and isinstance(target, str) and "?" in target:
            path = target.partition("?")[0]
            record.args = (*args[:_PATH_ARG], f"{path}?[redacted]", *args[_PATH_ARG + 1 :])
        return True


def server_log_config() -> dict[str, Any]:
    """The logging configuration for uvicorn, with :class:`QueryStringFilter` on the access logger."""
    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["no_query_strings"] = {"()": f"{__name__}.QueryStringFilter"}
    config["loggers"]["uvicorn.access"]["filters"] = ["no_query_strings"]
    return config
