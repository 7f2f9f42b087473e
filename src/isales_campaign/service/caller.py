"""Who is calling: what the call chain learns of each call's caller, for the use cases that
record who made a change."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass

from isales.campaign.v2.campaign_change_pb2 import Actor

from isales_campaign.internal_token import ACCESS_KEY_METADATA_KEY, presents


def no_certificate() -> str:
    """The certificate subject of a caller without one."""
    return ""


@dataclass(frozen=True, slots=True)
class Caller:
    """The caller of the call being served."""

    request_id: str
    metadata: Sequence[tuple[str, str | bytes]]
    #: The service's internal token ("" when none is configured).
    internal_token: str
    #: The subject of the caller's client certificate, "" without one (read when needed).
    certificate_subject: Callable[[], str]

    def actor(self) -> Actor:
        """Who the caller is: the access key a gateway passed on (only from a caller that
        presents the internal token), the client certificate's subject, or an internal
        caller; and the request id."""
        actor = Actor(request_id=self.request_id)
        access_key = next(
            (v for k, v in self.metadata if k == ACCESS_KEY_METADATA_KEY and isinstance(v, str)),
            "",
        )
        if access_key and presents(self.metadata, self.internal_token):
            actor.access_key = access_key
        subject = self.certificate_subject()
        if subject:
            actor.certificate_subject = subject
        if not (actor.access_key or actor.certificate_subject):
            actor.internal = True
        return actor


#: The caller of the call being served; set by the call chain.
current_caller: ContextVar[Caller | None] = ContextVar("current_caller", default=None)


def current_actor() -> Actor:
    """Who makes the change being served (an internal caller outside any call)."""
    caller = current_caller.get()
    return Actor(internal=True) if caller is None else caller.actor()
