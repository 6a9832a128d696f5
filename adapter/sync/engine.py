"""The sync engine: drains the outbox into the FHIR server as transaction Bundles.

Workers (threads) claim whole source records from the outbox, up to `batch_size` resources, and
post them as one transaction. What the server answers decides each resource's fate:
- success: done (the hash the server now holds is remembered, so unchanged content is never
  written again);
- TemporaryError (the client already retried): everything claimed goes back to pending and the
  run stops; the next `sync` resumes;
- 409 Conflict (a concurrent write of the same resource won; HAPI also answers so when two
  conditional creates race): the Bundle is re-sent a few times after a short pause (tenacity),
  then split; an entry that still collides stops the run like a TemporaryError;
- Rejected (400/422), 412 (several resources match a business identifier), 404 (a conditional
  reference matches nothing) for the whole transaction: the Bundle is split in halves, record by
  record, then a record entry by entry, until the entries the server refuses are alone: those
  become dead letters with the server's message, and never block the rest.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from adapter.fhirclient import (
    Conflict,
    FatalError,
    FhirClient,
    FhirError,
    NotFound,
    Rejected,
    TemporaryError,
    WriteResult,
)
from adapter.logs import get_logger, mask_personnummer
from adapter.mapping import MappedResource, transaction_bundle
from adapter.sync.outbox import (
    Batch,
    ClaimToken,
    Outbox,
    OutboxEntry,
    Written,
    unique_by_key,
)
from adapter.sync.progress import Tally, WriteOutcome
from adapter.sync.versionguard import (
    UniqueRule,
    decide,
    guard_bundle,
    read_server_plans,
    versioned_plans,
)

_log = get_logger("adapter.sync")

# 413: the Bundle is too large for the server; halves may pass.
_SPLITTABLE_STATUSES = frozenset({413})
# HAPI's storage response codes for a write that changed nothing.
_NO_CHANGE_SUFFIX = "_NO_CHANGE"
_MATCHED_CODES = frozenset({"SUCCESSFUL_CREATE_WITH_CONDITIONAL_MATCH"})
_IDLE_WAIT = 0.5
_BLOCKED_WAIT = 0.05
DEFAULT_WORKERS = 2


@dataclass(frozen=True, slots=True)
class SyncSettings:
    batch_size: int = 200
    workers: int = DEFAULT_WORKERS  # threads posting Bundles
    conflict_attempts: int = 4  # sends of one Bundle that meets 409 before it is split
    conflict_pause: float = 0.2  # seconds, doubled per attempt, with jitter


@dataclass(frozen=True, slots=True)
class SyncStop:
    """Why a run stopped before the outbox was empty."""

    error: FhirError
    temporary: bool

    @property
    def message(self) -> str:
        return self.error.message


class SyncEngine:
    """Posts what the outbox holds; `drain()` until empty, or `start()` beside a producer."""

    def __init__(
        self,
        outbox: Outbox,
        client: FhirClient,
        tally: Tally,
        settings: SyncSettings | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.outbox = outbox
        self.client = client
        self.tally = tally
        self.settings = settings or SyncSettings()
        self._sleep = sleep
        self._unique_rule = UniqueRule(client)

    def drain(self) -> SyncStop | None:
        """Send everything pending; None when done, else why it stopped."""
        run = self.start(producing=False)
        return run.finish()

    def start(self, *, producing: bool = True) -> Run:
        """Start the workers; call `Run.notify()` after each commit, `Run.finish()` at the end."""
        run = Run(self, producing=producing)
        run.start()
        return run

    # --- one batch ---

    def send(self, batch: Batch) -> None:
        self._send_groups(batch.claim, batch.groups)
        self.outbox.close_records(batch.record_ids)
        self.tally.depth(self.outbox.open_count())

    def _send_groups(self, token: str, groups: Sequence[Sequence[OutboxEntry]]) -> None:
        groups = list(groups)  # _post leaves in it only the records still to be written
        try:
            entries, response = self._post(token, groups)
        except Conflict as error:
            # 409: a concurrent write won; smaller Bundles collide less, and what still collides
            # stops the run (the next sync resumes). 412: several matches, a fault in the data.
            settle = self._give_up if error.status == 409 else self._dead
            self._split(token, groups, error, settle)
            return
        except Rejected as error:
            self._split(token, groups, error, self._dead)
            return
        except FatalError as error:
            if not _about_content(error):
                raise
            self._split(token, groups, error, self._dead)
            return
        if entries:
            self._accept(token, entries, response)

    def _post(
        self, token: str, groups: list[Sequence[OutboxEntry]]
    ) -> tuple[list[OutboxEntry], dict[str, Any]]:
        """Send the records whose plan is not older than the server's: (entries, response).

        Each attempt reads the server's plans anew: a 409 may be another installation's write.
        Records settled as older are removed from `groups`.
        """
        pause = self.settings.conflict_pause

        def concurrent(error: BaseException) -> bool:
            return isinstance(error, Conflict) and error.status == 409

        def backoff(state: RetryCallState) -> float:
            doubled = pause * 2.0 ** (state.attempt_number - 1)
            return doubled * (1 + random.random())  # noqa: S311 - jitter, not crypto

        def count(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            reason = error.message if isinstance(error, FhirError) else None
            _log.info("sync.conflict", attempt=state.attempt_number, reason=reason)
            self.tally.count_retry("HTTP 409 (samtidig ändring)")

        retrying = Retrying(
            retry=retry_if_exception(concurrent),
            wait=backoff,
            stop=stop_after_attempt(self.settings.conflict_attempts),
            sleep=self._sleep,
            before_sleep=count,
            reraise=True,
        )
        return retrying(self._send, token, groups)

    def _send(
        self, token: str, groups: list[Sequence[OutboxEntry]]
    ) -> tuple[list[OutboxEntry], dict[str, Any]]:
        """One attempt of `_post`: guard, then the transaction."""
        groups[:], bundle = self._guarded(token, groups)
        entries = unique_by_key(entry for group in groups for entry in group)
        if not entries:
            return [], {}
        self.tally.count_bundle()
        return entries, self.client.transaction(bundle)

    def _guarded(
        self, token: str, groups: Sequence[Sequence[OutboxEntry]]
    ) -> tuple[list[Sequence[OutboxEntry]], dict[str, Any]]:
        """The server-side plan-version guard (versionguard.py): older records settled as
        skipped, the rest as a transaction whose plan writes are conditional on the server's."""
        version_of = self.outbox.version_of
        plans = versioned_plans(groups, version_of)
        server = read_server_plans(self.client, plans) if plans else {}
        decision = decide(groups, version_of, server)
        for older in decision.older:
            message = mask_personnummer(older.message)
            _log.warning("sync.older_than_server", ours=older.ours, theirs=older.theirs)
            self.outbox.skip_older(token, older.group, message)
            self.tally.count_older_on_server(message)
        entries = unique_by_key(entry for group in decision.send for entry in group)
        bundle = transaction_bundle(_mapped(entry) for entry in entries)
        # A new plan is created (never matched) only where the server refuses a second one.
        absent = decision.absent if decision.absent and self._unique_rule.active() else set()
        return decision.send, guard_bundle(bundle, decision.held, absent)

    def _split(
        self,
        token: str,
        groups: Sequence[Sequence[OutboxEntry]],
        error: FhirError,
        settle: Callable[[str, OutboxEntry, FhirError], None],
    ) -> None:
        """Isolate the entries the server refuses: halves of records, then single entries."""
        if len(groups) > 1:
            middle = len(groups) // 2
            self._send_groups(token, groups[:middle])
            self._send_groups(token, groups[middle:])
            return
        (group,) = groups
        if len(group) > 1:
            for entry in group:
                self._send_groups(token, [[entry]])
            return
        settle(token, group[0], error)

    def _dead(self, token: str, entry: OutboxEntry, error: FhirError) -> None:
        message = mask_personnummer(error.message or f"HTTP {error.status}")
        _log.warning(
            "sync.dead_letter",
            resource_type=entry.resource_type,
            status=error.status,
            reason=message,
        )
        self.outbox.mark_dead(token, entry, message)
        self.tally.count_dead(entry.resource_type, message)

    @staticmethod
    def _give_up(_token: str, entry: OutboxEntry, error: FhirError) -> None:
        raise TemporaryError(
            f"{entry.resource_type} ändras samtidigt av någon annan: {error.message}",
            status=error.status,
            outcome=error.outcome,
        ) from error

    def _accept(self, token: str, entries: Sequence[OutboxEntry], response: dict[str, Any]) -> None:
        answers = response.get("entry") or []
        if len(answers) != len(entries):
            raise FatalError(
                f"Servern svarade med {len(answers)} poster på en transaktion med {len(entries)}"
            )
        written: list[Written] = []
        for entry, answer in zip(entries, answers, strict=True):
            result = WriteResult.from_entry(answer)
            written.append(Written(entry, result.id, result.version))
            self.tally.count_written(entry.resource_type, _outcome(entry, result, answer))
        self.outbox.complete(token, written)


class Run:
    """Worker threads draining the outbox while a producer may still be adding to it."""

    def __init__(self, engine: SyncEngine, *, producing: bool) -> None:
        self.engine = engine
        self._producing = producing
        self._generation = 0
        self._wake = threading.Condition()
        self._stop: SyncStop | None = None
        self._failure: BaseException | None = None
        self._cancelled = False
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for number in range(max(1, self.engine.settings.workers)):
            thread = threading.Thread(target=self._work, name=f"sync-worker-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def notify(self) -> None:
        """New work was committed to the outbox."""
        with self._wake:
            self._generation += 1
            self._wake.notify_all()

    def finish(self) -> SyncStop | None:
        """The producer is done: drain what is left, wait for the workers, say how it ended."""
        with self._wake:
            self._producing = False
            self._generation += 1
            self._wake.notify_all()
        for thread in self._threads:
            thread.join()
        if self._failure is not None:
            raise self._failure
        return self._stop

    def cancel(self) -> None:
        """Stop after the Bundles now in flight (the producer failed or was interrupted)."""
        with self._wake:
            self._cancelled = True
            self._wake.notify_all()

    def _halt(self, stop: SyncStop | None = None, failure: BaseException | None = None) -> None:
        with self._wake:
            if self._stop is None and self._failure is None:
                self._stop, self._failure = stop, failure
            self._wake.notify_all()

    def _halted(self) -> bool:
        return self._cancelled or self._stop is not None or self._failure is not None

    def _work(self) -> None:
        engine = self.engine
        token = str(ClaimToken.new())
        batch_size = engine.settings.batch_size
        try:
            while not self._halted():
                with self._wake:
                    generation, producing = self._generation, self._producing
                claimed = engine.outbox.claim(
                    token, batch_size, min_resources=batch_size if producing else 1
                )
                if claimed.batch is not None:
                    engine.send(claimed.batch)
                    continue
                if not producing and not claimed.blocked:
                    return
                with self._wake:
                    # Blocked: another worker's write should end soon; else wait for new work.
                    if self._generation == generation and not self._halted():
                        self._wake.wait(_BLOCKED_WAIT if claimed.blocked else _IDLE_WAIT)
        except TemporaryError as error:
            self._halt(SyncStop(error, temporary=True))
        except FatalError as error:  # credentials, a wrong base URL, a garbled answer
            self._halt(SyncStop(error, temporary=False))
        except BaseException as failure:  # a bug: stop the run and re-raise it from finish()
            self._halt(failure=failure)
        finally:
            stop = self._stop
            engine.outbox.release(token, stop.message if stop else None)
            engine.tally.depth(engine.outbox.open_count())
            engine.outbox.close()


def _mapped(entry: OutboxEntry) -> MappedResource:
    return MappedResource(
        resource_type=entry.resource_type,
        identifier_system=entry.identifier_system,
        identifier_value=entry.identifier_value,
        resource=entry.resource,
        create_only=entry.create_only,
    )


def _about_content(error: FatalError) -> bool:
    """A refusal of what the Bundle holds, not of the request itself.

    HAPI answers 404 with an OperationOutcome when a conditional reference matches nothing
    (a wrong base URL gives a 404 without one); 413 when the Bundle is too large.
    """
    if isinstance(error, NotFound):
        return error.outcome is not None
    return error.status in _SPLITTABLE_STATUSES


def _server_did_nothing(answer: dict[str, Any]) -> bool:
    """HAPI says so in the entry's outcome: a storage response code like `..._NO_CHANGE`."""
    outcome = (answer.get("response") or {}).get("outcome") or {}
    codes = {
        coding.get("code", "")
        for issue in outcome.get("issue", [])
        for coding in (issue.get("details") or {}).get("coding", [])
    }
    return any(code.endswith(_NO_CHANGE_SUFFIX) or code in _MATCHED_CODES for code in codes)


def _outcome(entry: OutboxEntry, result: WriteResult, answer: dict[str, Any]) -> WriteOutcome:
    if result.created:
        return WriteOutcome.CREATED
    if (
        entry.create_only
        or (entry.server_version and entry.server_version == result.version)
        or _server_did_nothing(answer)
    ):
        return WriteOutcome.NOOP
    return WriteOutcome.UPDATED
