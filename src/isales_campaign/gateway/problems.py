"""Problems the gateway finds in a request before the service sees it."""

from __future__ import annotations

from dataclasses import dataclass

from isales_campaign.result_codes import ResultCode


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem, located by its legacy JSON path (`callerNo[1].priority`; "" = the body)."""

    path: str
    code: ResultCode.ValueType
    message: str


def lower_camel(snake: str) -> str:
    """`max_alerting_time` -> `maxAlertingTime`: the legacy key of a proto field."""
    head, *rest = snake.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)
