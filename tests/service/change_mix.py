"""A mix of campaign changes made by client threads at full speed (adds, modifications,
suspensions, resumptions, deletions and archivings, several threads on one campaign at times),
what each call answered, and the check of a tenant's change history against them: a record
for every acknowledged change, none for a refused one, and every record a change that was
made, consistent with what is stored.

Every change but an add names the version it read (an etag), so that an acknowledged one says
which record it made: (kind, campaign, version). A call whose answer the client never had (a
server killed under it) may have been made or not; its record may exist, but only one, and
only if the stored state says it was made."""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import grpc
from isales.campaign.v2 import campaign_pb2 as pb
from isales.campaign.v2 import campaign_service_pb2 as rpc
from isales.campaign.v2.campaign_change_pb2 import CampaignChange, ChangeKind
from isales.campaign.v2.campaign_service_pb2_grpc import CampaignServiceStub

from tests.examples import add_request, example_campaign

ADDED, MODIFIED = ChangeKind.CHANGE_KIND_ADDED, ChangeKind.CHANGE_KIND_MODIFIED
PAUSED, RESUMED = ChangeKind.CHANGE_KIND_PAUSED, ChangeKind.CHANGE_KIND_RESUMED
DELETED, ARCHIVED = ChangeKind.CHANGE_KIND_DELETED, ChangeKind.CHANGE_KIND_ARCHIVED
KINDS = (ADDED, MODIFIED, PAUSED, RESUMED, DELETED, ARCHIVED)
EXECUTING, SUSPENDED = pb.CAMPAIGN_STATUS_EXECUTING, pb.CAMPAIGN_STATUS_PAUSED

#: The changes of an executing campaign, and of a suspended one, made in turn.
_EXECUTING_TURNS = (MODIFIED, PAUSED)
_SUSPENDED_TURNS = (RESUMED, DELETED, MODIFIED, ARCHIVED)
#: Answers that say the change was not made.
REFUSALS = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)
#: Deadline of every call, in seconds.
DEADLINE = 15.0


@dataclass(frozen=True, slots=True)
class Change:
    """A change as its record names it; for an add whose id the client never learned,
    campaign 0 and the name it asked for."""

    kind: int
    campaign_id: int
    version: int
    name: str = ""

    @classmethod
    def of(cls, record: CampaignChange) -> Change:
        return cls(record.kind, record.campaign_id, record.version)


@dataclass
class Answers:
    """What the clients learned of the changes they asked for."""

    acknowledged: list[Change] = field(default_factory=list)
    #: Refusals, by code.
    refused: Counter[str] = field(default_factory=Counter)
    #: Changes asked for whose outcome the client never learned,
    unknown: list[Change] = field(default_factory=list)
    #: and how their calls ended, by code.
    cut: Counter[str] = field(default_factory=Counter)


class ChangeMix:
    """Changes of one tenant's campaigns, from client threads that each make `changes` calls
    (None: until stopped). The threads pick among the campaigns acknowledged to any of them,
    so that they sometimes race one another; about `live` campaigns are kept. A mix may run
    several times, with other clients (a server restarted): it goes on with the campaigns it
    knows, and its answers add up."""

    def __init__(self, *, changes: int | None = None, live: int = 8, vdn_id: int = 1) -> None:
        self.answers = Answers()
        self._changes = changes
        self._live = live
        self._vdn_id = vdn_id
        self._today = datetime.now(UTC).date()
        self._ids: set[int] = set()
        self._names = itertools.count(1)
        #: The turns of the changes of executing campaigns, and of suspended ones.
        self._turns = (itertools.count(), itertools.count())
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []
        #: How many times it ran (its threads' random choices differ each time).
        self._runs = 0

    @contextmanager
    def running(self, clients: Sequence[CampaignServiceStub]) -> Iterator[ChangeMix]:
        """One thread per stub in `clients` runs inside; they are stopped and joined at its
        end."""
        self._stop.clear()
        self._runs += 1
        self._threads = [
            threading.Thread(target=self._client, args=(stub, index), daemon=True)
            for index, stub in enumerate(clients)
        ]
        for thread in self._threads:
            thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self.join()

    def join(self) -> None:
        """Wait for every thread to make its calls (or to be stopped)."""
        for thread in self._threads:
            thread.join(DEADLINE * 2)
            assert not thread.is_alive(), "a client thread did not end"
        assert not self._errors, self._errors

    @property
    def acknowledged(self) -> int:
        with self._lock:
            return len(self.answers.acknowledged)

    def _client(self, stub: CampaignServiceStub, index: int) -> None:
        try:
            _Client(self, stub, random.Random(self._runs * 1000 + index)).run()
        except BaseException as error:
            self._errors.append(error)
            raise

    def _answered(self, change: Change, call: Callable[[], object]) -> object | None:
        """Make the call; note its answer. The response when it succeeded."""
        try:
            response = call()
        except grpc.RpcError as error:
            code = error.code() if isinstance(error, grpc.Call) else None
            with self._lock:
                if code in REFUSALS:
                    assert code is not None
                    self.answers.refused[code.name] += 1
                else:
                    self.answers.unknown.append(change)
                    self.answers.cut[code.name if code else repr(error)] += 1
            return None
        return response

    def acknowledge(self, change: Change) -> None:
        """Count a change acknowledged (made by the mix, or before it)."""
        with self._lock:
            self.answers.acknowledged.append(change)
            if change.kind == ADDED:
                self._ids.add(change.campaign_id)
            elif change.kind in (DELETED, ARCHIVED):
                self._ids.discard(change.campaign_id)

    def _next_kind(self, status: int) -> int:
        """The kind of the next change of a campaign in `status`: each kind it allows in turn,
        whichever thread asks, so that every kind is made."""
        if status == EXECUTING:
            return _EXECUTING_TURNS[next(self._turns[0]) % len(_EXECUTING_TURNS)]
        return _SUSPENDED_TURNS[next(self._turns[1]) % len(_SUSPENDED_TURNS)]

    def _forget(self, campaign_id: int) -> None:
        with self._lock:
            self._ids.discard(campaign_id)

    def _pick(self, rng: random.Random) -> int | None:
        """A campaign to change, or None: add one."""
        with self._lock:
            ids = sorted(self._ids)
        if len(ids) < self._live and rng.random() < 0.7:
            return None
        return rng.choice(ids) if ids else None


class _Client:
    """One client thread of a mix."""

    def __init__(self, mix: ChangeMix, stub: CampaignServiceStub, rng: random.Random) -> None:
        self._mix = mix
        self._stub = stub
        self._rng = rng
        self._made = 0

    def run(self) -> None:
        mix = self._mix
        while not mix._stop.is_set() and (mix._changes is None or self._made < mix._changes):
            campaign_id = mix._pick(self._rng)
            if campaign_id is None:
                self._add()
                continue
            stored = self._read(campaign_id)
            if stored is not None:
                self._change(stored)

    def _add(self) -> None:
        self._made += 1
        name = f"mix {next(self._mix._names)}"
        campaign = example_campaign(name, today=self._mix._today)
        if self._rng.random() < 0.3:
            campaign.init_status = pb.INIT_STATUS_PAUSED
        request = add_request(campaign, self._mix._vdn_id)
        asked = Change(ADDED, 0, 1, name)
        response = self._mix._answered(
            asked, lambda: self._stub.AddCampaign(request, timeout=DEADLINE)
        )
        if isinstance(response, rpc.AddCampaignResponse):
            assert not response.replayed
            self._mix.acknowledge(Change(ADDED, response.id, 1))

    def _read(self, campaign_id: int) -> rpc.CampaignRecord | None:
        """The campaign as stored now; None when it is gone or cannot be read."""
        request = rpc.GetCampaignRequest(vdn_id=self._mix._vdn_id, campaign_id=campaign_id)
        try:
            return self._stub.GetCampaign(request, timeout=DEADLINE).campaign
        except grpc.RpcError as error:
            if isinstance(error, grpc.Call) and error.code() == grpc.StatusCode.NOT_FOUND:
                self._mix._forget(campaign_id)
            else:
                time.sleep(0.01)  # a server that is not there: a client backs off a little
            return None

    def _change(self, stored: rpc.CampaignRecord) -> None:
        """The next change, in turn, of those the campaign's status allows, at the version
        read."""
        self._made += 1
        kind = self._mix._next_kind(stored.status)
        version = stored.version
        vdn_id, campaign_id, etag = self._mix._vdn_id, stored.id, str(version)
        stub = self._stub
        if kind == MODIFIED:
            campaign = pb.Campaign()
            campaign.CopyFrom(stored.campaign)
            campaign.description = f"{version + 1} of {stored.id}"
            update = rpc.UpdateCampaignRequest(
                vdn_id=vdn_id, campaign_id=campaign_id, campaign=campaign, etag=etag
            )
            self._made_with(
                Change(kind, stored.id, version + 1),
                lambda: stub.UpdateCampaign(update, timeout=DEADLINE).campaign.version,
            )
        elif kind == PAUSED:
            pause = rpc.PauseCampaignRequest(vdn_id=vdn_id, campaign_id=campaign_id, etag=etag)
            self._made_with(
                Change(kind, stored.id, version + 1),
                lambda: stub.PauseCampaign(pause, timeout=DEADLINE).campaign.version,
            )
        elif kind == RESUMED:
            resume = rpc.ResumeCampaignRequest(vdn_id=vdn_id, campaign_id=campaign_id, etag=etag)
            self._made_with(
                Change(kind, stored.id, version + 1),
                lambda: stub.ResumeCampaign(resume, timeout=DEADLINE).campaign.version,
            )
        else:
            delete = rpc.DeleteCampaignRequest(
                vdn_id=vdn_id, campaign_id=campaign_id, etag=etag, archive=kind == ARCHIVED
            )

            def deleted() -> int:
                stub.DeleteCampaign(delete, timeout=DEADLINE)
                return version  # the version removed

            self._made_with(Change(kind, stored.id, version), deleted)

    def _made_with(self, change: Change, call: Callable[[], int]) -> None:
        """Make a change by `call`, which returns the campaign's version after it."""
        version = self._mix._answered(change, call)
        if version is not None:
            assert version == change.version, (change, version)
            self._mix.acknowledge(change)


def every_change(
    client: CampaignServiceStub, vdn_id: int = 1, page_size: int = 100
) -> list[CampaignChange]:
    """The tenant's whole history, page by page."""
    found: list[CampaignChange] = []
    after = 0
    while True:
        request = rpc.ListCampaignChangesRequest(
            vdn_id=vdn_id, after_sequence=after, page_size=page_size
        )
        page = client.ListCampaignChanges(request, timeout=DEADLINE)
        found += page.changes
        if not page.next_after_sequence:
            return found
        after = page.next_after_sequence


def stored_campaigns(client: CampaignServiceStub, vdn_id: int = 1) -> dict[int, rpc.CampaignRecord]:
    """The tenant's campaigns, live and archived, by id."""
    found: dict[int, rpc.CampaignRecord] = {}
    for archived in (False, True):
        token = ""
        while True:
            request = rpc.ListCampaignsRequest(
                vdn_id=vdn_id, archived=archived, page_size=100, page_token=token
            )
            page = client.ListCampaigns(request, timeout=DEADLINE)
            found.update((record.id, record) for record in page.campaigns)
            token = page.next_page_token
            if not token:
                break
    return found


def history_problems(
    records: list[CampaignChange],
    campaigns: dict[int, rpc.CampaignRecord],
    answers: Answers,
) -> list[str]:
    """How the history breaks its promises, given what is stored and what the clients were
    answered (an empty list: it keeps them)."""
    problems: list[str] = []
    sequences = [record.sequence for record in records]
    if sequences != list(range(1, len(records) + 1)):
        problems.append(f"the sequences are not 1..{len(records)}: {_runs(sequences)}")
    problems += _chain_problems(records, campaigns)
    recorded = Counter(Change.of(record) for record in records)
    acknowledged = Counter(answers.acknowledged)
    problems += [
        f"{change} acknowledged {count} times"
        for change, count in acknowledged.items()
        if count > 1
    ]
    problems += [
        f"{change} was acknowledged without its record"
        for change in acknowledged
        if not recorded[change]
    ]
    # The rest must be changes whose outcome the clients never learned, each recorded once.
    unknown = Counter(answers.unknown)
    for record in records:
        change = Change.of(record)
        if change in acknowledged:
            continue
        if change.kind == ADDED:
            change = Change(ADDED, 0, 1, record.campaign.name)
        if unknown[change]:
            unknown[change] -= 1
        else:
            problems.append(f"record {record.sequence} {change}: no client asked for it")
    if not answers.unknown and len(records) != len(answers.acknowledged):
        problems.append(f"{len(records)} records of {len(answers.acknowledged)} changes")
    return problems


def _chain_problems(
    records: list[CampaignChange], campaigns: dict[int, rpc.CampaignRecord]
) -> list[str]:
    """Each campaign's records, against one another and against the campaign as stored."""
    problems: list[str] = []
    chains: dict[int, list[CampaignChange]] = {}
    for record in records:
        chains.setdefault(record.campaign_id, []).append(record)
    for campaign_id, chain in chains.items():
        first = chain[0]
        if (first.kind, first.version) != (ADDED, 1):
            problems.append(f"campaign {campaign_id}'s history starts with {Change.of(first)}")
        for before, after in itertools.pairwise(chain):
            removed = after.kind in (DELETED, ARCHIVED)
            if before.kind in (DELETED, ARCHIVED):
                problems.append(f"campaign {campaign_id} changed after {Change.of(before)}")
            elif after.version != before.version + (0 if removed else 1):
                problems.append(
                    f"campaign {campaign_id}: {Change.of(after)} follows {Change.of(before)}"
                )
        problems += _state_problems(chain[-1], campaigns.get(campaign_id))
    problems += [
        f"campaign {campaign_id} is stored without a history"
        for campaign_id in campaigns.keys() - chains.keys()
    ]
    return problems


def _state_problems(last: CampaignChange, stored: rpc.CampaignRecord | None) -> list[str]:
    """Whether the campaign is stored as its last record says it was left."""
    said = f"campaign {last.campaign_id}, last recorded {Change.of(last)}"
    if last.kind == DELETED:
        return [] if stored is None else [f"{said}, is stored at version {stored.version}"]
    if stored is None:
        return [f"{said}, is not stored"]
    archived = stored.HasField("archive_time")
    # Archiving is a change of the stored campaign, which increments its version; its record
    # names the version removed.
    version = last.version + 1 if archived else last.version
    if archived != (last.kind == ARCHIVED) or stored.version != version:
        return [f"{said}, is stored at version {stored.version} (archived: {archived})"]
    if (stored.status, stored.campaign) != (last.status, last.campaign):
        return [f"{said}, is stored otherwise (status {stored.status}, not {last.status})"]
    return []


def _runs(sequences: list[int]) -> str:
    """Sequences, consecutive runs shortened: "1-40, 42, 42-60"."""
    runs: list[list[int]] = []
    for sequence in sequences:
        if runs and sequence == runs[-1][-1] + 1:
            runs[-1].append(sequence)
        else:
            runs.append([sequence])
    return ", ".join(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]) for run in runs)
