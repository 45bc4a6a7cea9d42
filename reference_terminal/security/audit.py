"""The security audit log (ISC-2 §7.4.1.3): every user action and security event, with the
terminal's own time, the user, the type, the outcome and details, in the terminal's store.

Tamper evidence. Each entry's ``hash`` is SM3 over the previous entry's hash and the entry's
canonical content (position, time, user, type, outcome, details), so changing any byte of an
entry breaks its hash, and removing one breaks the link of the next. A plain hash chain can be
recomputed by whoever edits the database, so each hash is also *sealed*: HMAC-SM3 under a key
derived from the terminal's key file, which is outside the store. The chain's head (the last
position and hash) is kept beside it in a sealed anchor file, so cutting entries off the end is
seen too. :meth:`AuditLog.verify_chain` walks the log and names the first broken entry.

Deletion. Entries cannot be deleted one by one (no API does it, and a row deleted behind the
terminal's back is detected); the auditor may delete the whole log (:meth:`AuditLog.clear`),
which in the same transaction starts the next chain with an ``audit_cleared`` entry recording
who, how many entries and the last hash of the chain deleted. Positions are never reused.

Entries are appended through the store's single writer (one transaction each, in order with
the data writes, durable when ``append`` returns); queries and verification run in its reader
threads. Old entries are never purged by retention: ISC-2 wants ≥ 6 months on the device and
allows only whole-log deletion. The anchor belongs to the store it was written for: moving the
terminal to another database (a new ``storage.url``) shows the old entries as missing there,
which is what happened from the new log's point of view.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import csv
import functools
import io
import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime as _datetime
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Connection, Select, func, select

from common.clock import Clock
from protocols.smcrypto import sm3
from reference_terminal.security.errors import AuditUnavailable, SecretsError
from reference_terminal.security.secrets import SealedFile, SecretBox
from reference_terminal.storage.schema import ID_LENGTH, audit_log
from reference_terminal.storage.store import Store

log = logging.getLogger(__name__)

GENESIS = "0" * 64
SEAL_PURPOSE = "audit-seal"
ANCHOR_PURPOSE = "audit-anchor"
#: The entry that opens a chain after a whole-log deletion.
CLEARED = "audit_cleared"
Outcome = Literal["success", "failure"]
OUTCOMES: tuple[Outcome, ...] = ("success", "failure")
SortKey = Literal["seq", "t", "user", "type", "outcome"]
_SORT_COLUMNS = {
    "seq": audit_log.c.seq,
    "t": audit_log.c.t,
    "user": audit_log.c.user_id,
    "type": audit_log.c.event_type,
    "outcome": audit_log.c.outcome,
}
#: A detail value longer than this is cut (a request cannot fill the log with one entry).
MAX_DETAIL = 1000
MAX_DETAILS = 40
#: Rows read at a time when verifying or exporting.
CHUNK = 2000


def clean(text: str, limit: int) -> str:
    """``text`` fit for a column: control characters escaped (NUL cannot be stored on
    PostgreSQL; a forged newline must not fake a line in an export), at most ``limit``."""
    out = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
    return out if len(out) <= limit else out[: limit - 1] + "…"


def content(
    seq: int, t: float, user: str, type_: str, outcome: str, details: Mapping[str, str]
) -> bytes:
    """An entry's canonical bytes: what its hash covers (JSON, sorted keys, no spaces; a float
    is written as its shortest round-trip text, which every backend's DOUBLE gives back)."""
    document = {
        "seq": seq,
        "t": t,
        "user": user,
        "type": type_,
        "outcome": outcome,
        "details": dict(details),
    }
    return json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def chain_hash(prev_hash: str, data: bytes) -> str:
    """SM3(previous hash ‖ content), as hex."""
    return sm3(bytes.fromhex(prev_hash) + data).hex()


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    t: float
    user: str
    type: str
    outcome: str
    details: Mapping[str, str]
    prev_hash: str
    hash: str

    def record(self, offset_s: int) -> dict[str, Any]:
        """The entry for people and exports: time as ISO 8601 with the plant's offset too."""
        return {
            "seq": self.seq,
            "t": self.t,
            "time": iso(self.t, offset_s),
            "user": self.user,
            "type": self.type,
            "outcome": self.outcome,
            "details": dict(self.details),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


def iso(t: float, offset_s: int) -> str:
    return _datetime.fromtimestamp(t, timezone(timedelta(seconds=offset_s))).isoformat()


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Combined conditions (ISC-2 §7.4.1.3(5) 组合条件查找); None matches anything."""

    start: float | None = None  # inclusive
    end: float | None = None  # exclusive
    user: str | None = None
    type: str | None = None
    outcome: str | None = None


@dataclass(frozen=True, slots=True)
class Broken:
    """Where the chain first breaks: the position (an entry, or a missing one) and why."""

    seq: int
    reason: str


@dataclass(frozen=True, slots=True)
class ChainReport:
    ok: bool
    entries: int
    first_seq: int | None
    last_seq: int | None
    #: The head the terminal last wrote (its anchor); 0 when it has none.
    anchor_seq: int
    first_broken: Broken | None = None
    problems: list[Broken] = field(default_factory=list)


def _entry(row: Mapping[Any, Any]) -> AuditEntry:
    """An entry from its row (a mapping: ``Row.t`` is a method of SQLAlchemy's rows)."""
    details = json.loads(row["details"])
    if not isinstance(details, dict):
        raise ValueError("details are not a JSON object")
    return AuditEntry(
        seq=int(row["seq"]),
        t=float(row["t"]),
        user=row["user_id"],
        type=row["event_type"],
        outcome=row["outcome"],
        details=details,
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )


def _where(query: Select[Any], f: AuditFilter) -> Select[Any]:
    c = audit_log.c
    if f.start is not None:
        query = query.where(c.t >= f.start)
    if f.end is not None:
        query = query.where(c.t < f.end)
    if f.user is not None:
        query = query.where(c.user_id == f.user)
    if f.type is not None:
        query = query.where(c.event_type == f.type)
    if f.outcome is not None:
        query = query.where(c.outcome == f.outcome)
    return query


def _ordered(query: Select[Any], sort: SortKey, descending: bool) -> Select[Any]:
    column = _SORT_COLUMNS[sort]
    seq = audit_log.c.seq
    if descending:
        return query.order_by(column.desc(), seq.desc())
    return query.order_by(column.asc(), seq.asc())


#: An entry appended and not committed yet: its time, its fields, and who waits for it.
_Queued = tuple[float, tuple[str, str, str, dict[str, str]], "asyncio.Future[AuditEntry]"]


class AuditLog:
    """Appends, queries, exports, verifies and (whole-log) deletes the audit log.

    ``store`` gives the terminal's store when it is open (None while starting): the log
    refuses to work without it (:class:`AuditUnavailable`) rather than drop entries.
    """

    def __init__(
        self, store: Callable[[], Store | None], clock: Clock, box: SecretBox, anchor: Path
    ) -> None:
        self._get_store = store
        self.clock = clock
        self._box = box
        self._anchor = SealedFile(anchor, box, ANCHOR_PURPOSE)
        #: The last (position, hash) this terminal committed: the chain's known head.
        self._head: tuple[int, str] = (0, GENESIS)
        #: Why the anchor could not be trusted at start (reported by every verification).
        self.anchor_problem: str | None = None
        try:
            document = self._anchor.read()
            if document is not None:
                self._head = (int(document["seq"]), str(document["hash"]))
        except (SecretsError, KeyError, TypeError, ValueError) as exc:
            self.anchor_problem = f"the audit anchor {anchor} cannot be trusted: {exc}"
        #: The head the anchor file holds; its writes, one at a time in a thread of their own.
        self._anchored = self._head[0]
        self._anchor_turn = asyncio.Lock()
        self._anchor_writer = concurrent.futures.ThreadPoolExecutor(1, "audit-anchor")
        #: Entries appended but not committed yet, and the task committing them.
        self._queued: list[_Queued] = []
        self._committing: asyncio.Future[None] | None = None
        self._generation = 0  # one more at each restore (rebase)

    @property
    def head(self) -> tuple[int, str]:
        return self._head

    def ready(self) -> bool:
        return self._get_store() is not None

    def _store(self) -> Store:
        store = self._get_store()
        if store is None:
            raise AuditUnavailable("the audit log's store is not open yet: nothing is done now")
        return store

    # ---- writing -------------------------------------------------------------------------------

    def _seal(self, hash_hex: str) -> str:
        return self._box.mac(SEAL_PURPOSE, bytes.fromhex(hash_hex)).hex()

    def _chain_head(self, conn: Connection) -> tuple[int, str]:
        """Where the next entry goes: after the database's last entry, or after the anchor if
        the database lost entries at its end (the gap then stays visible to verification)."""
        stored = stored_head(conn)
        known = self._head  # read in the writer thread: the latest committed head
        return known if known[0] >= stored[0] else stored

    def rebase(self, head: tuple[int, str]) -> tuple[int, str]:
        """The store was replaced by a restored backup (ISC-2 §4.4) whose log ends at ``head``:
        chain on from there, the anchor with it (what this terminal logged after the backup was
        made went with the rest of the data). Call it while the store is closed, before any
        entry goes into the restored one. Returns the head that was superseded."""
        superseded = self._head
        self._head = head
        self._anchored = head[0]
        self._generation += 1  # entries committed before the restore no longer move the head
        self._anchor.write({"seq": head[0], "hash": head[1]})
        return superseded

    def _insert(
        self,
        conn: Connection,
        head: tuple[int, str],
        t: float,
        user: str,
        type_: str,
        outcome: str,
        details: Mapping[str, str],
    ) -> AuditEntry:
        seq = head[0] + 1
        digest = chain_hash(head[1], content(seq, t, user, type_, outcome, details))
        conn.execute(
            audit_log.insert().values(
                seq=seq,
                t=t,
                user_id=user,
                event_type=type_,
                outcome=outcome,
                details=json.dumps(details, ensure_ascii=False, sort_keys=True),
                prev_hash=head[1],
                hash=digest,
                seal=self._seal(digest),
            )
        )
        return AuditEntry(seq, t, user, type_, outcome, dict(details), head[1], digest)

    async def _advance(self, entry: AuditEntry) -> None:
        """Remember a committed entry as the head, and write the head to the anchor file before
        returning (not fsynced: an anchor behind the database after a power cut is harmless, and
        it is never written before the entry's commit, so it is never ahead).

        The file is written by one thread of its own, never by the event loop (sealing, writing
        and renaming take milliseconds), one write at a time: the entries committed while a
        write is under way are all covered by the next one, so a busy terminal writes its anchor
        far less often than once per entry."""
        if entry.seq > self._head[0]:
            self._head = (entry.seq, entry.hash)
        async with self._anchor_turn:
            if self._anchored >= entry.seq:
                return  # written meanwhile, with this entry or a later one as the head
            seq, digest = self._head
            document = {"seq": seq, "hash": digest}
            try:
                write = functools.partial(self._anchor.write, document, durable=False)
                await asyncio.get_running_loop().run_in_executor(self._anchor_writer, write)
            except OSError as exc:  # the entry is committed; only the cut-off-end check weakens
                log.error("audit anchor %s not written: %s", self._anchor.path, exc)
                return
            self._anchored = max(self._anchored, seq)

    @staticmethod
    def _fields(
        user: str, type_: str, outcome: str, details: Mapping[str, str] | None
    ) -> tuple[str, str, str, dict[str, str]]:
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
        cleaned = {
            clean(str(k), 64): clean(str(v), MAX_DETAIL)
            for k, v in list((details or {}).items())[:MAX_DETAILS]
        }
        return clean(user, ID_LENGTH) or "-", clean(type_, ID_LENGTH) or "-", outcome, cleaned

    async def append(
        self,
        user: str,
        type_: str,
        outcome: Outcome,
        details: Mapping[str, str] | None = None,
    ) -> AuditEntry:
        """Record one event at the terminal's time; durable when this returns."""
        t = self.clock.time()
        if not math.isfinite(t):
            raise ValueError(f"the terminal's clock gives {t!r}")
        fields = self._fields(user, type_, outcome, details)
        store = self._store()
        waiting: asyncio.Future[AuditEntry] = asyncio.get_running_loop().create_future()
        self._queued.append((t, fields, waiting))
        if self._committing is None or self._committing.done():
            self._committing = asyncio.ensure_future(self._commit_queued(store))
        generation = self._generation
        entry = await asyncio.shield(waiting)
        if generation == self._generation:
            await self._advance(entry)
        return entry

    def _insert_all(self, batch: list[_Queued], conn: Connection) -> list[AuditEntry]:
        head = self._chain_head(conn)
        entries = []
        for t, fields, _ in batch:
            entry = self._insert(conn, head, t, *fields)
            head = (entry.seq, entry.hash)
            entries.append(entry)
        return entries

    async def _commit_queued(self, store: Store) -> None:
        """Commit the entries appended meanwhile, a transaction for all that are waiting (one
        commit for many requests), each chained to the one before, in the order appended."""
        while self._queued:
            batch, self._queued = self._queued, []
            try:
                entries = await store.run_in_writer(functools.partial(self._insert_all, batch))
            except Exception as exc:
                for _, _, waiting in batch:
                    if not waiting.done():
                        waiting.set_exception(exc)
                continue
            for entry, (_, _, waiting) in zip(entries, batch, strict=True):
                if not waiting.done():
                    waiting.set_result(entry)

    async def clear(self, by: str, details: Mapping[str, str] | None = None) -> AuditEntry:
        """Delete the whole log and start the next chain with an ``audit_cleared`` entry, in one
        transaction (ISC-2 §7.4.1.3(4): 仅允许全部删除). Authorisation is the caller's."""
        t = self.clock.time()

        def clear_in(conn: Connection) -> AuditEntry:
            head = self._chain_head(conn)
            count, first = conn.execute(
                select(func.count(), func.min(audit_log.c.seq)).select_from(audit_log)
            ).one()
            conn.execute(audit_log.delete())
            record = {
                **(details or {}),
                "deleted_entries": str(count),
                "deleted_first_seq": str(first or 0),
                "deleted_last_seq": str(head[0]),
                "deleted_last_hash": head[1],
            }
            fields = self._fields(by, CLEARED, "success", record)
            return self._insert(conn, head, t, *fields)

        entry = await self._store().run_in_writer(clear_in)
        await self._advance(entry)
        return entry

    # ---- reading -------------------------------------------------------------------------------

    async def query(
        self,
        f: AuditFilter = AuditFilter(),
        *,
        sort: SortKey = "seq",
        descending: bool = False,
        limit: int | None = 100,
        offset: int = 0,
    ) -> tuple[list[AuditEntry], int]:
        """Entries matching ``f`` in the order asked, and how many match in all."""

        def run(conn: Connection) -> tuple[list[AuditEntry], int]:
            total = conn.scalar(_where(select(func.count()).select_from(audit_log), f))
            query = _ordered(_where(select(audit_log), f), sort, descending).offset(offset)
            if limit is not None:
                query = query.limit(limit)
            return [_entry(r) for r in conn.execute(query).mappings()], int(total or 0)

        return await self._store().run_in_reader(run)

    async def export(
        self,
        f: AuditFilter,
        fmt: Literal["csv", "json"],
        *,
        offset_s: int,
        sort: SortKey = "seq",
        descending: bool = False,
    ) -> tuple[bytes, int]:
        """Every matching entry as a CSV or JSON document (ISC-2 §7.4.1.3(5) 导出), and how
        many. Hashes are included, so a copy can be checked against the chain later."""
        entries, total = await self.query(f, sort=sort, descending=descending, limit=None)
        records = [e.record(offset_s) for e in entries]
        if fmt == "json":
            return json.dumps(records, ensure_ascii=False, indent=1).encode() + b"\n", total
        out = io.StringIO()
        columns = ["seq", "time", "t", "user", "type", "outcome", "details", "prev_hash", "hash"]
        writer = csv.DictWriter(out, columns, lineterminator="\r\n")
        writer.writeheader()
        for r in records:
            writer.writerow(
                {**r, "t": repr(r["t"]), "details": json.dumps(r["details"], ensure_ascii=False)}
            )
        return out.getvalue().encode("utf-8"), total

    async def verify_chain(self) -> ChainReport:
        """Walk the log in order and check every hash, seal and link, then the end against the
        anchor. ``first_broken`` names the first entry that was edited, or the first position
        missing."""
        anchor = self._head
        return await self._store().run_in_reader(lambda conn: self._verify(conn, anchor))

    def _verify(self, conn: Connection, anchor: tuple[int, str]) -> ChainReport:
        problems: list[Broken] = []
        count = 0
        first_seq: int | None = None
        previous: tuple[int, str] | None = None
        hash_at_anchor: str | None = None
        if self.anchor_problem:
            problems.append(Broken(0, self.anchor_problem))
        rows = (
            conn.execution_options(yield_per=CHUNK)
            .execute(select(audit_log).order_by(audit_log.c.seq))
            .mappings()
        )
        for row in rows:
            count += 1
            seq = int(row["seq"])
            problems.extend(self._check_row(row, previous))
            if first_seq is None:
                first_seq = seq
            if seq == anchor[0]:
                hash_at_anchor = row["hash"]
            previous = (seq, str(row["hash"]))
        last_seq = previous[0] if previous else None
        if anchor[0] > 0:
            if last_seq is None or last_seq < anchor[0]:
                after = last_seq or 0
                problems.append(
                    Broken(
                        after + 1,
                        f"entries {after + 1} to {anchor[0]} are missing: the log ends at "
                        f"{after} but this terminal wrote up to {anchor[0]}",
                    )
                )
            elif hash_at_anchor != anchor[1]:
                problems.append(
                    Broken(anchor[0], "does not match the hash this terminal wrote there")
                )
        return ChainReport(
            ok=not problems,
            entries=count,
            first_seq=first_seq,
            last_seq=last_seq,
            anchor_seq=anchor[0],
            first_broken=problems[0] if problems else None,
            problems=problems,
        )

    def _check_row(
        self, row: Mapping[Any, Any], previous: tuple[int, str] | None
    ) -> Iterable[Broken]:
        seq = int(row["seq"])
        try:
            entry = _entry(row)
            recomputed = chain_hash(
                entry.prev_hash,
                content(seq, entry.t, entry.user, entry.type, entry.outcome, entry.details),
            )
        except ValueError as exc:  # unreadable details, a hash that is not hex
            yield Broken(seq, f"edited: the entry cannot be read ({exc})")
            return
        if recomputed != entry.hash:
            yield Broken(seq, "edited: its content no longer matches its SM3 hash")
        elif not self._box.mac_ok(SEAL_PURPOSE, bytes.fromhex(entry.hash), _unhex(row["seal"])):
            yield Broken(seq, "its seal does not match: written or rehashed without this terminal")
        if previous is None:
            if seq == 1:
                if entry.prev_hash != GENESIS:
                    yield Broken(seq, "the first entry does not start from the genesis hash")
            elif not (
                entry.type == CLEARED
                and entry.details.get("deleted_last_seq") == str(seq - 1)
                and entry.details.get("deleted_last_hash") == entry.prev_hash
            ):
                yield Broken(
                    1 if seq > 1 else seq,
                    f"entries 1 to {seq - 1} are missing: the log starts at {seq} and not with "
                    "a recorded deletion of the whole log",
                )
        elif seq != previous[0] + 1:
            yield Broken(
                previous[0] + 1,
                f"entries {previous[0] + 1} to {seq - 1} are missing: {seq} follows {previous[0]}",
            )
        elif entry.prev_hash != previous[1]:
            yield Broken(seq, f"its previous hash is not the hash of entry {previous[0]}")


def stored_head(conn: Connection) -> tuple[int, str]:
    """The (position, hash) of the last entry in the store's log; the genesis when empty."""
    row = conn.execute(
        select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)
    ).first()
    return (int(row.seq), str(row.hash)) if row is not None else (0, GENESIS)


def _unhex(text: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        return b""
