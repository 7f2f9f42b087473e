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
