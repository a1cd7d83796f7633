"""The append-only audit trail: one record per rule firing.

Every firing is recorded with the rule that fired (pack, version, hash, table,
rule, source line), the input values its condition read and the outputs it
produced, so that an auditor can answer "why was this order placed?" from the
trail alone. Real-data runs stamp records with the wall clock, simulations with
simulation time; otherwise the two trails are the same.

Writing is the hot path. ``Trail.add`` only appends a tuple to a buffer; the
JSON text is built when a batch of ``batch_size`` records is flushed, by a
function generated once per rule (``Trail.rule``) that encodes each value with
a C-level function chosen by its type (memo dictionaries for text, which
repeats: store ids, SKUs, regions). A batch is written in one SQLite
transaction or one ``write`` to a JSON Lines file, so a killed writer leaves
whole batches behind (SQLite) or at worst one torn last line (JSONL), which is
ignored by readers and cut off by the next writer.

Run ids are ``R1``, ``R2``, ...: one more than the runs already in the file,
never random or time-based, so that a simulation with a fixed seed writes a
byte-identical trail into a fresh folder.

SQLite layout (a public contract; auditors query it directly)
-------------------------------------------------------------
Auditors read the view ``trail``: one row per firing with the columns of
``COLUMNS``. Underneath, what identifies a rule (pack, version, hash, table,
rule, label, source line, and the outputs a firing of the rule has unless it
gives others) is stored once per file in ``trail_rules``, and each firing in
``trail_records`` points at it: a firing's row is a fraction of the size, and
a simulation's year of order-desk moves writes in half the time. Values in
``inputs`` and ``outputs`` are JSON text as ``json.dumps(...,
ensure_ascii=False)`` writes it: keys of ``inputs`` in the order the rule's
condition reads them, dates as ``"YYYY-MM-DD"``, NaN and infinities as
``null``. ``ts`` is ISO 8601 UTC text with milliseconds
(``2026-11-23T02:26:34.123Z``) for the wall clock and a REAL for simulation
time. ::

    CREATE TABLE IF NOT EXISTS trail_runs (
        run_id      TEXT PRIMARY KEY,  -- 'R1', 'R2', ... in the order runs began
        started_at  TEXT,              -- ISO 8601 UTC; NULL for clock 'sim'
        finished_at TEXT,              -- set once at close; NULL for clock 'sim'
        command     TEXT,
        clock       TEXT,              -- 'wall' or 'sim'
        meta        TEXT,              -- JSON object, sorted keys
        records     INTEGER            -- set once at close; NULL while running or if killed
    )

    CREATE TABLE IF NOT EXISTS trail_rules (
        rule_key     INTEGER PRIMARY KEY, -- 1, 2, ... in the order the file first met the rule
        pack_id      TEXT,
        pack_version TEXT,
        pack_sha256  TEXT,
        table_id     TEXT,
        rule_id      TEXT,
        rule_label   TEXT,             -- label_en, else label_zh, else NULL
        source_file  TEXT,
        source_line  INTEGER,          -- 1-based line of the rule in source_file
        outputs      TEXT              -- JSON: the rule's outputs, when a firing has no others
    )

    CREATE TABLE IF NOT EXISTS trail_records (
        run_id   TEXT NOT NULL,
        seq      INTEGER NOT NULL,     -- 1, 2, ... within the run, no gaps
        ts,                            -- TEXT for clock 'wall', REAL for clock 'sim'
        subject  TEXT,                 -- what the rule fired on, e.g. a store/SKU key
        rule_key INTEGER NOT NULL,     -- the rule in trail_rules
        inputs   TEXT,                 -- JSON object {field: value}
        outputs  TEXT,                 -- JSON; NULL: the rule's outputs (trail_rules)
        PRIMARY KEY (run_id, seq)
    ) WITHOUT ROWID

    CREATE VIEW IF NOT EXISTS trail AS
    SELECT r.run_id, r.seq, r.ts, r.subject, k.pack_id, k.pack_version, k.pack_sha256,
           k.table_id, k.rule_id, k.rule_label, k.source_file, k.source_line,
           r.inputs, coalesce(r.outputs, k.outputs) AS outputs
    FROM trail_records AS r JOIN trail_rules AS k ON k.rule_key = r.rule_key

    CREATE TRIGGER IF NOT EXISTS trail_no_update INSTEAD OF UPDATE ON trail
    BEGIN SELECT RAISE(ABORT, 'the trail is append-only'); END

    CREATE TRIGGER IF NOT EXISTS trail_no_delete INSTEAD OF DELETE ON trail
    BEGIN SELECT RAISE(ABORT, 'the trail is append-only'); END

    CREATE TRIGGER IF NOT EXISTS trail_records_no_update BEFORE UPDATE ON trail_records
    BEGIN SELECT RAISE(ABORT, 'the trail is append-only'); END

    CREATE TRIGGER IF NOT EXISTS trail_records_no_delete BEFORE DELETE ON trail_records
    BEGIN SELECT RAISE(ABORT, 'the trail is append-only'); END

    CREATE TRIGGER IF NOT EXISTS trail_rules_no_update BEFORE UPDATE ON trail_rules
    BEGIN SELECT RAISE(ABORT, 'the trail is append-only'); END

    CREATE TRIGGER IF NOT EXISTS trail_rules_no_delete BEFORE DELETE ON trail_rules
    BEGIN SELECT RAISE(ABORT, 'the trail is append-only'); END

    CREATE TRIGGER IF NOT EXISTS trail_runs_no_delete BEFORE DELETE ON trail_runs
    BEGIN SELECT RAISE(ABORT, 'the trail is append-only'); END

    CREATE TRIGGER IF NOT EXISTS trail_runs_no_replace BEFORE INSERT ON trail_runs
    WHEN EXISTS (SELECT 1 FROM trail_runs WHERE run_id = NEW.run_id)
    BEGIN SELECT RAISE(ABORT, 'the trail is append-only'); END

    CREATE TRIGGER IF NOT EXISTS trail_runs_finish_once BEFORE UPDATE ON trail_runs
    WHEN OLD.records IS NOT NULL OR OLD.finished_at IS NOT NULL OR NEW.records IS NULL
        OR NEW.run_id IS NOT OLD.run_id OR NEW.started_at IS NOT OLD.started_at
        OR NEW.command IS NOT OLD.command OR NEW.clock IS NOT OLD.clock
        OR NEW.meta IS NOT OLD.meta
    BEGIN SELECT RAISE(ABORT, 'the trail is append-only'); END

    -- created at close, when building them once is cheaper than keeping them
    -- up to date during the bulk load
    CREATE INDEX IF NOT EXISTS trail_subject ON trail_records (subject)
    CREATE INDEX IF NOT EXISTS trail_rule_key ON trail_records (rule_key)

Queries on ``trail`` by ``subject``, ``rule_id`` or ``run_id`` and ``seq``
use these indexes through the view (close also runs a sampled ``ANALYZE``, a
few milliseconds, so that the planner reaches a rule's firings by its key).
A rule is added to ``trail_rules`` in a transaction of its own when a run
first meets it, so writers sharing a file agree on keys, and keys are
numbered deterministically. A run is finished
when ``records`` is set; simulation runs keep ``finished_at`` NULL so that
their files stay reproducible. The triggers stop accidents, not a determined
editor: whoever can write the file can drop them, and ``INSERT OR REPLACE``
into ``trail_records`` deletes the old row without firing its delete trigger
(SQLite fires delete triggers for REPLACE only under ``PRAGMA
recursive_triggers``); a guarding insert trigger would cost more than the
insert itself. The file uses WAL with ``synchronous=NORMAL``: a killed
process loses only its unflushed batch, a power cut may lose the last
committed batches but never leaves a half batch. Close checkpoints the WAL, so
a closed trail is one self-contained file.

Files written by storeops before ``trail_rules`` existed hold ``trail`` as
one table with the same columns (and indexes on ``subject`` and
``rule_id``). They are read the same way, and new runs in such a file are
written in its own layout.

JSON Lines layout
-----------------
One object per line with exactly the columns of ``trail``, in that order;
``inputs`` and ``outputs`` are embedded JSON values (so ``jq`` can reach into
them), which ``read_trail`` returns as JSON text like the SQLite sink. The file
has no run table: ``list_runs`` derives runs from the records, and a run that
recorded nothing leaves no trace, so the next run gets its number again.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import itertools
import json
import math
import numbers
import operator
import os
import re
import sqlite3
import time
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from json.encoder import encode_basestring  # the C escaper behind ensure_ascii=False

from storeops.engine.errors import TrailError

try:  # advisory lock so that two writers never interleave lines of one JSONL file
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = [
    "COLUMNS",
    "RUN_COLUMNS",
    "JsonlTrail",
    "NullTrail",
    "RuleRef",
    "SqliteTrail",
    "Trail",
    "list_runs",
    "open_trail",
    "read_trail",
]

COLUMNS = (
    "run_id",
    "seq",
    "ts",
    "subject",
    "pack_id",
    "pack_version",
    "pack_sha256",
    "table_id",
    "rule_id",
    "rule_label",
    "source_file",
    "source_line",
    "inputs",
    "outputs",
)
RUN_COLUMNS = ("run_id", "started_at", "finished_at", "command", "clock", "meta", "records")
CLOCKS = ("wall", "sim")

_APPEND_ONLY = "SELECT RAISE(ABORT, 'the trail is append-only')"
# stored once per rule in trail_rules: pack_id ... source_line, and the rule's own outputs
_RULE_COLUMNS = (*COLUMNS[4:12], "outputs")
_RECORD_COLUMNS = ("run_id", "seq", "ts", "subject", "rule_key", "inputs", "outputs")
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS trail_runs (
        run_id      TEXT PRIMARY KEY,  -- 'R1', 'R2', ... in the order runs began
        started_at  TEXT,              -- ISO 8601 UTC; NULL for clock 'sim'
        finished_at TEXT,              -- set once at close; NULL for clock 'sim'
        command     TEXT,
        clock       TEXT,              -- 'wall' or 'sim'
        meta        TEXT,              -- JSON object, sorted keys
        records     INTEGER            -- set once at close; NULL while running or if killed
    )""",
    """CREATE TABLE IF NOT EXISTS trail_rules (
        rule_key     INTEGER PRIMARY KEY, -- 1, 2, ... in the order the file first met the rule
        pack_id      TEXT,
        pack_version TEXT,
        pack_sha256  TEXT,
        table_id     TEXT,
        rule_id      TEXT,
        rule_label   TEXT,             -- label_en, else label_zh, else NULL
        source_file  TEXT,
        source_line  INTEGER,          -- 1-based line of the rule in source_file
        outputs      TEXT              -- JSON: the rule's outputs, when a firing has no others
    )""",
    """CREATE TABLE IF NOT EXISTS trail_records (
        run_id   TEXT NOT NULL,
        seq      INTEGER NOT NULL,     -- 1, 2, ... within the run, no gaps
        ts,                            -- TEXT for clock 'wall', REAL for clock 'sim'
        subject  TEXT,                 -- what the rule fired on, e.g. a store/SKU key
        rule_key INTEGER NOT NULL,     -- the rule in trail_rules
        inputs   TEXT,                 -- JSON object {field: value}
        outputs  TEXT,                 -- JSON; NULL: the rule's outputs (trail_rules)
        PRIMARY KEY (run_id, seq)
    ) WITHOUT ROWID""",
    """CREATE VIEW IF NOT EXISTS trail AS
    SELECT r.run_id, r.seq, r.ts, r.subject, k.pack_id, k.pack_version, k.pack_sha256,
           k.table_id, k.rule_id, k.rule_label, k.source_file, k.source_line,
           r.inputs, coalesce(r.outputs, k.outputs) AS outputs
    FROM trail_records AS r JOIN trail_rules AS k ON k.rule_key = r.rule_key""",
    f"""CREATE TRIGGER IF NOT EXISTS trail_no_update INSTEAD OF UPDATE ON trail
    BEGIN {_APPEND_ONLY}; END""",
    f"""CREATE TRIGGER IF NOT EXISTS trail_no_delete INSTEAD OF DELETE ON trail
    BEGIN {_APPEND_ONLY}; END""",
    f"""CREATE TRIGGER IF NOT EXISTS trail_records_no_update BEFORE UPDATE ON trail_records
    BEGIN {_APPEND_ONLY}; END""",
    f"""CREATE TRIGGER IF NOT EXISTS trail_records_no_delete BEFORE DELETE ON trail_records
    BEGIN {_APPEND_ONLY}; END""",
    f"""CREATE TRIGGER IF NOT EXISTS trail_rules_no_update BEFORE UPDATE ON trail_rules
    BEGIN {_APPEND_ONLY}; END""",
    f"""CREATE TRIGGER IF NOT EXISTS trail_rules_no_delete BEFORE DELETE ON trail_rules
    BEGIN {_APPEND_ONLY}; END""",
    f"""CREATE TRIGGER IF NOT EXISTS trail_runs_no_delete BEFORE DELETE ON trail_runs
    BEGIN {_APPEND_ONLY}; END""",
    f"""CREATE TRIGGER IF NOT EXISTS trail_runs_no_replace BEFORE INSERT ON trail_runs
    WHEN EXISTS (SELECT 1 FROM trail_runs WHERE run_id = NEW.run_id)
    BEGIN {_APPEND_ONLY}; END""",
    f"""CREATE TRIGGER IF NOT EXISTS trail_runs_finish_once BEFORE UPDATE ON trail_runs
    WHEN OLD.records IS NOT NULL OR OLD.finished_at IS NOT NULL OR NEW.records IS NULL
        OR NEW.run_id IS NOT OLD.run_id OR NEW.started_at IS NOT OLD.started_at
        OR NEW.command IS NOT OLD.command OR NEW.clock IS NOT OLD.clock
        OR NEW.meta IS NOT OLD.meta
    BEGIN {_APPEND_ONLY}; END""",
)
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS trail_subject ON trail_records (subject)",
    "CREATE INDEX IF NOT EXISTS trail_rule_key ON trail_records (rule_key)",
)
# the run id ('R' and digits, made here) is written into the statement: one less parameter
_INSERT = "INSERT INTO trail_records VALUES ('{run_id}', ?, ?, ?, ?, ?, ?)"
_FIND_RULE = (f"SELECT rule_key FROM trail_rules WHERE "
              f"{' AND '.join(f'{c} IS ?' for c in _RULE_COLUMNS)} ORDER BY rule_key LIMIT 1")
_ADD_RULE = f"INSERT INTO trail_rules ({', '.join(_RULE_COLUMNS)}) VALUES " \
    f"({', '.join('?' * len(_RULE_COLUMNS))})"
# Files written before trail_rules existed keep their one wide table, and new runs in such a
# file are written the same way (readers see the same ``trail`` either way).
_INSERT_WIDE = f"INSERT INTO trail VALUES ({', '.join('?' * len(COLUMNS))})"
_INDEXES_WIDE = (
    "CREATE INDEX IF NOT EXISTS trail_subject ON trail (subject)",
    "CREATE INDEX IF NOT EXISTS trail_rule_id ON trail (rule_id)",
)
_RUN_ORDER = "CAST(substr(run_id, 2) AS INTEGER)"  # R10 after R9, unlike text order
_SQLITE_MAGIC = b"SQLite format 3\x00"
_JSONL_START = b'{"run_id": "R'  # every JSONL trail line begins so
_PAGE_SIZE = 16384  # fewer page splits than 4096 for ~350-byte rows; ~20% faster bulk load
_BUSY_TIMEOUT_S = 30.0  # another run may hold the write lock for one batch
_MEMO_LIMIT = 1 << 16  # entries per memo before it is emptied; bounds memory on unique values


@dataclass(frozen=True, slots=True)
class RuleRef:
    """What the trail needs to know of a rule; registered once per run with ``Trail.rule``.

    ``fields`` are the fields the rule's condition reads, in the order their
    values are passed to ``Trail.add`` and their keys appear in the inputs
    JSON. ``outputs`` is the JSON text of the rule's constant outputs, stored
    for every firing whose ``add`` gets no outputs of its own.
    """

    pack_id: str
    pack_version: str
    pack_sha256: str
    table_id: str
    rule_id: str
    source_file: str
    source_line: int  # 1-based, as editors count
    fields: tuple[str, ...]
    outputs: str
    label_en: str = ""
    label_zh: str = ""

    def __post_init__(self) -> None:
        # A list would make the ref unhashable, and Trail.rule keys on the ref.
        if not isinstance(self.fields, tuple):
            object.__setattr__(self, "fields", tuple(self.fields))


# ---------------------------------------------------------------------------
# value -> JSON text


class _Memo(dict):
    """Maps a value to its JSON text, computing it on a miss.

    A dict subclass with ``__missing__`` keeps the hit path in C: ``memo[v]``
    runs no Python code when ``v`` was seen before.
    """

    __slots__ = ("encode",)

    def __init__(self, encode) -> None:
        super().__init__()
        self.encode = encode

    def __missing__(self, value):
        text = self.encode(value)
        if _is_present(value):  # NaN never equals itself: storing it only grows the dict
            self[value] = text
        return text


class _TextMemo(dict):
    """The memo for str values: the same as ``_Memo``, minus two calls per miss.

    Subjects and text fields are often all distinct, so the miss path counts.
    """

    __slots__ = ()

    def __missing__(self, value: str) -> str:
        text = self[value] = encode_basestring(value)
        return text


class _TextBytesMemo(dict):
    __slots__ = ()

    def __missing__(self, value: str) -> bytes:
        text = self[value] = encode_basestring(value).encode()
        return text


class _Encoders(dict):
    """Exact type -> a function giving the JSON text of a value of that type.

    Keyed by exact type, so that 1, 1.0 and True never share a memo entry.
    Common types map to functions implemented in C (``int.__repr__``, a memo's
    ``__getitem__``), so encoding a value runs no Python code unless a memo
    misses. Unknown types (numpy scalars, subclasses) get a memo of
    ``_encode_other`` on first sight.
    """

    __slots__ = ("encode_other", "memos")

    def __init__(self, encode_other, memos: list) -> None:
        super().__init__()
        self.encode_other = encode_other
        self.memos = memos  # every memo behind these functions, to bound their size

    def memoize(self, kind: type, encode=None, memo: dict | None = None) -> None:
        memo = _Memo(encode) if memo is None else memo
        self.memos.append(memo)
        self[kind] = memo.__getitem__

    def __missing__(self, kind):
        self.memoize(kind, self.encode_other)
        return self[kind]


def _is_present(value) -> bool:
    """False for NaN-like values (NaN, NaT, pandas NA), which equal nothing."""
    try:
        return bool(value == value)
    except (TypeError, ValueError):  # pandas.NA refuses to be a bool
        return False


def _encode_float(value: float) -> str:
    return float.__repr__(value) if math.isfinite(value) else "null"


def _encode_date(value: date) -> str:
    return f'"{value.isoformat()}"'


def _encode_other(value) -> str:
    """JSON text of a value of an unusual type: numpy scalars, subclasses, missing markers."""
    item = getattr(value, "item", None)
    if callable(item) and not isinstance(value, (str, date)):
        value = item()  # numpy scalar -> Python scalar
    if value is None:
        return "null"
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return int.__repr__(int(value))
    if isinstance(value, numbers.Real):
        return _encode_float(float(value))
    if isinstance(value, str):
        return encode_basestring(str(value))
    if not _is_present(value):
        return "null"
    if isinstance(value, date):  # datetime included
        return f'"{value.isoformat()}"'
    raise TrailError(
        f"cannot record a value of type {type(value).__name__}: "
        "expected None, bool, int, float, str or datetime.date"
    )


def _encoders(*, binary: bool) -> tuple[_Encoders, _Encoders]:
    """The fast and the safe encoders, giving str (SQLite) or UTF-8 bytes (JSONL).

    The fast ones write floats with C's repr, which spells NaN and infinities
    ``nan`` and ``inf``: the writer looks for those in each batch
    (``_NON_FINITE``) and remakes the few records that have them with the safe
    ones, which write ``null``. A Python check per float would cost more than
    the whole C path.
    """
    memos: list = []
    other = _to_utf8(_encode_other) if binary else _encode_other
    fast, safe = _Encoders(other, memos), _Encoders(other, memos)
    if binary:
        fast[int] = b"%d".__mod__
        fast[float] = b"%r".__mod__
        fast[bool] = {True: b"true", False: b"false"}.__getitem__
        fast[type(None)] = {None: b"null"}.__getitem__
        fast.memoize(str, memo=_TextBytesMemo())
        fast.memoize(date, _to_utf8(_encode_date))
        fast.memoize(datetime, _to_utf8(_encode_date))
        safe.update(fast)
        safe[float] = _to_utf8(_encode_float)
    else:
        fast[int] = int.__repr__
        fast[float] = float.__repr__
        fast[bool] = {True: "true", False: "false"}.__getitem__
        fast[type(None)] = {None: "null"}.__getitem__
        fast.memoize(str, memo=_TextMemo())
        fast.memoize(date, _encode_date)
        fast.memoize(datetime, _encode_date)
        safe.update(fast)
        safe[float] = _encode_float
    return fast, safe


# What C's repr makes of NaN and infinities, as a value inside an inputs object.
_NON_FINITE = re.compile(r": (?:nan|-?inf)[,}]")
_NON_FINITE_BYTES = re.compile(rb": (?:nan|-?inf)[,}]")


def _to_utf8(encode):
    def encode_utf8(value) -> bytes:
        return encode(value).encode()

    return encode_utf8


def _canonical_json(value) -> str:
    """JSON text as both sinks store it; NaN and infinities become null, as in inputs."""
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except ValueError:  # a non-finite float somewhere: rare, so walk only now
        return json.dumps(_finite(value), ensure_ascii=False, allow_nan=False)


def _finite(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _canonical_text(text: str) -> str:
    """Outputs text as both sinks store it, so that SQLite and JSONL read back the same."""
    return _canonical_json(json.loads(text))


# ---------------------------------------------------------------------------
# per-rule record makers
#
# Each rule gets a small function, generated once, that turns a buffered
# firing into a row (SQLite) or a line (JSONL). Straight-line code, unrolled
# over the fields, is about twice as fast as a loop over them, and this is
# most of the trail's Python cost. SQLite rows get their inputs text from an
# f-string; JSONL lines are bytes from one %-template, since encoding the
# joined batch to UTF-8 would cost as much again whenever a line holds
# non-ASCII text. Only the number of fields shapes the source; names and texts
# enter as closure variables, never as source text.


@functools.cache
def _maker_factory(kind: str, field_count: int):
    """The factory of makers for rules reading ``field_count`` fields ('sqlite',
    'sqlite_wide' for files in the one-table layout, or 'jsonl').

    SQLite: ``PIECES`` holds the constant text around the field values; piece
    ``i`` goes before value ``i``, the last piece after the last value.
    JSONL: ``LINE`` is a bytes %-template taking seq, ts, subject, the values
    and the outputs.
    """
    names = [f"v{i}" for i in range(field_count)]
    unpack = f"{', '.join(names)}, = values" if names else "() = values"
    encoded = [f"E[type({n})]({n})" for n in names]
    outputs = "OUTPUTS if outputs is None else canon(outputs)"
    if kind == "sqlite":
        pieces = [f"P{i}" for i in range(field_count + 1)]
        text = "".join(f"{{{p}}}{{{e}}}" for p, e in zip(pieces, encoded, strict=False))
        text += f"{{{pieces[-1]}}}"
        parameters = "RULE_KEY, PIECES, E, canon"
        setup = f"{', '.join(pieces)}, = PIECES"
        # no outputs given: NULL, which the view reads as the rule's own (stored once); the
        # run id is in the INSERT statement
        outputs = "None if outputs is None else canon(outputs)"
        body = f'return (seq, ts, subject, RULE_KEY, f"{text}", {outputs})'
    elif kind == "sqlite_wide":
        pieces = [f"P{i}" for i in range(field_count + 1)]
        text = "".join(f"{{{p}}}{{{e}}}" for p, e in zip(pieces, encoded, strict=False))
        text += f"{{{pieces[-1]}}}"
        parameters = (
            "RUN, PACK_ID, PACK_VERSION, PACK_SHA256, TABLE_ID, RULE_ID, RULE_LABEL,"
            " SOURCE_FILE, SOURCE_LINE, PIECES, OUTPUTS, E, canon"
        )
        setup = f"{', '.join(pieces)}, = PIECES"
        body = (
            "return (RUN, seq, ts, subject, PACK_ID, PACK_VERSION, PACK_SHA256, TABLE_ID,"
            f' RULE_ID, RULE_LABEL, SOURCE_FILE, SOURCE_LINE, f"{text}", {outputs})'
        )
    else:
        parameters = "LINE, OUTPUTS, E, canon"
        setup = "pass"
        values = "".join(f"{e}, " for e in encoded)
        body = f"return LINE % (seq, ts, E[type(subject)](subject), {values}{outputs})"
    source = (
        f"def factory({parameters}):\n"
        f"    {setup}\n"
        "    def make(seq, ts, subject, values, outputs):\n"
        f"        {unpack}\n"
        f"        {body}\n"
        "    return make\n"
    )
    # Bound like expressions.py binds its matchers: compile the module, take the function's
    # code object and make the function directly, so nothing is ever exec'd.
    module = compile(source, f"<trail {kind} maker, {field_count} fields>", "exec")
    code = next(c for c in module.co_consts if isinstance(c, types.CodeType))
    return types.FunctionType(code, {"__builtins__": builtins})


def _inputs_pieces(fields: Sequence[str]) -> list[str]:
    """The constant text of an inputs object around its values: '{"a": ', ', "b": ', '}'."""
    if not fields:
        return ["{}"]
    keys = [encode_basestring(field) for field in fields]
    return ["{" + keys[0] + ": ", *(", " + key + ": " for key in keys[1:]), "}"]


def _escape_percent(text: str) -> str:
    return text.replace("%", "%%")


def _rule_label(ref: RuleRef) -> str | None:
    return ref.label_en or ref.label_zh or None


def _check_ref(ref: RuleRef) -> str:
    """Validate a rule ref; return its outputs as canonical JSON text."""
    if not isinstance(ref, RuleRef):
        raise TrailError(f"Trail.rule() takes a RuleRef, not {type(ref).__name__}")
    where = f"{ref.source_file}:{ref.source_line}: rule {ref.rule_id!r}"
    if len(set(ref.fields)) != len(ref.fields):
        raise TrailError(f"{where}: fields {list(ref.fields)} name a field twice")
    if not all(isinstance(f, str) for f in ref.fields):
        raise TrailError(f"{where}: fields must be strings, got {list(ref.fields)}")
    if not isinstance(ref.source_line, int):
        raise TrailError(f"{where}: source_line must be an int")
    try:
        return _canonical_text(ref.outputs)
    except (TypeError, ValueError) as e:
        raise TrailError(f"{where}: outputs are not JSON text: {e}") from None


# ---------------------------------------------------------------------------
# time stamps


def _iso_utc(seconds: float | None = None) -> str:
    """ISO 8601 UTC with milliseconds, truncated the way ``datetime`` truncates."""
    return _wall_clock_text()(time.time() if seconds is None else seconds)


def _wall_clock_text(*, json_bytes: bool = False):
    """A converter from ``time.time()`` seconds to ISO text, caching the last millisecond.

    Callers often stamp every firing, and many fall into the same millisecond.
    With ``json_bytes`` the text comes quoted and UTF-8 encoded, for JSONL.
    """
    last_ms = None
    text: str | bytes = ""

    def convert(seconds):
        nonlocal last_ms, text
        ms = _milliseconds(seconds)
        if ms != last_ms:
            whole, milli = divmod(ms, 1000)
            text = f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(whole))}.{milli:03d}Z"
            if json_bytes:
                text = f'"{text}"'.encode()
            last_ms = ms
        return text

    return convert


def _milliseconds(seconds: float) -> int:
    """Whole milliseconds since the epoch, as ``datetime.fromtimestamp`` would show them.

    Like datetime, round the fraction to microseconds (half to even), then
    truncate; rounding ``seconds * 1e6`` instead would differ near boundaries.
    """
    fraction, whole = math.modf(seconds)
    micro = round(fraction * 1e6)
    if micro >= 1_000_000:
        micro -= 1_000_000
        whole += 1.0
    elif micro < 0:
        micro += 1_000_000
        whole -= 1.0
    return int(whole) * 1000 + micro // 1000


def _sim_time(ts) -> float | None:
    ts = float(ts)
    return ts if math.isfinite(ts) else None


def _sim_time_json(ts) -> bytes:
    return _encode_float(float(ts)).encode()


# ---------------------------------------------------------------------------
# the trail


class _ClosedBuffer:
    """Stands in for the buffer of a closed trail, so that ``add`` needs no check."""

    __slots__ = ()

    def append(self, record) -> None:
        raise TrailError("the trail is closed")

    def extend(self, records) -> None:
        raise TrailError("the trail is closed")

    def clear(self) -> None:
        pass

    def __len__(self) -> int:
        return 0


_CLOSED = _ClosedBuffer()


class Trail:
    """Base class of the sinks; use ``open_trail`` to get one.

    Not thread-safe: one trail per run, used by the thread that opened it.
    Use it as a context manager, or call ``close``; records still in the
    buffer when the process dies are not written.
    """

    __slots__ = (
        "_batch_size",
        "_canon",
        "_closed",
        "_encoders",
        "_keys",
        "_last_ts",
        "_last_ts_value",
        "_makers",
        "_outputs_memo",
        "_pending",
        "_refs",
        "_safe_encoders",
        "_safe_makers",
        "_ts_value",
        "_written",
        "clock",
        "path",
        "run_id",
    )

    def __init__(
        self, run_id: str, path: str | None, clock: str, batch_size: int, *, binary: bool = False
    ) -> None:
        self.run_id = run_id
        self.path = path
        self.clock = clock
        self._pending: list = []
        self._batch_size = batch_size
        self._written = 0
        self._keys: dict[RuleRef, int] = {}
        self._refs: list[RuleRef] = []
        self._makers: dict = {}
        self._safe_makers: dict = {}
        self._encoders, self._safe_encoders = _encoders(binary=binary)
        self._outputs_memo = _Memo(_to_utf8(_canonical_text) if binary else _canonical_text)
        outputs_memo = self._outputs_memo

        def canon(outputs) -> str | bytes:
            """Outputs given to ``add`` as canonical JSON: text is parsed, objects dumped."""
            if type(outputs) is str:
                return outputs_memo[outputs]
            text = _canonical_json(outputs)
            return text.encode() if binary else text

        self._canon = canon
        self._last_ts = self._last_ts_value = object()  # equal to no time stamp
        self._ts_value = self._ts_converter()
        self._closed = False

    # -- registration -------------------------------------------------------

    def rule(self, ref: RuleRef) -> int:
        """The key that ``add`` takes for this rule; the same ref always gets the same key."""
        key = self._keys.get(ref)
        if key is None:
            outputs = _check_ref(ref)
            key = len(self._refs)
            self._makers[key] = self._maker(ref, outputs, self._encoders)
            self._safe_makers[key] = self._maker(ref, outputs, self._safe_encoders)
            self._refs.append(ref)
            self._keys[ref] = key
        return key

    def _maker(self, ref: RuleRef, outputs: str, encoders: _Encoders):
        """The function that turns a buffered firing of this rule into a row or line."""
        return None

    # -- the hot path -------------------------------------------------------

    def add(self, ts, subject, rule: int, values: tuple, outputs: str | None = None) -> int:
        """Record one firing; return its seq (1-based, consecutive within the run).

        ``values`` are the fact's values of the rule's fields, in their order.
        ``outputs=None`` records the rule's constant outputs. Nothing is
        checked or formatted here; a bad record is reported by the flush
        that writes it.
        """
        pending = self._pending
        pending.append((ts, subject, rule, values, outputs))
        n = len(pending)
        seq = self._written + n
        if n >= self._batch_size:
            self.flush()
        return seq

    def add_many(self, ts, subjects, rules, values, outputs=None) -> int:
        """Record many firings (the columnar path); return the first seq.

        ``subjects`` and ``values`` are sequences of equal length; ``ts`` and
        ``rules`` are such sequences or one value for all; ``outputs`` is None,
        one text for all, or a sequence. The records and the batch boundaries
        are those of repeated ``add`` calls.
        """
        if self._closed:
            raise TrailError("the trail is closed")
        records = _records(ts, subjects, rules, values, outputs)
        first = self.next_seq
        batch_size = self._batch_size
        while True:
            pending = self._pending
            pending.extend(itertools.islice(records, batch_size - len(pending)))
            if len(pending) < batch_size:
                return first
            self.flush()

    @property
    def next_seq(self) -> int:
        """The seq the next firing will get."""
        return self._written + len(self._pending) + 1

    # -- writing ------------------------------------------------------------

    def flush(self) -> None:
        """Write the buffered firings as one batch (one transaction, or one write)."""
        pending = self._pending
        if not pending:
            return
        self._write(self._written + 1, pending)
        self._written += len(pending)
        pending.clear()
        for memo in self._encoders.memos:
            if len(memo) > _MEMO_LIMIT:
                memo.clear()
        if len(self._outputs_memo) > _MEMO_LIMIT:
            self._outputs_memo.clear()

    def _write(self, first_seq: int, pending: list) -> None:
        raise NotImplementedError

    def _format(self, first_seq: int, pending: list, *, safe: bool = False) -> list:
        """Rows or lines for the pending firings, via the per-rule makers."""
        makers = self._safe_makers if safe else self._makers
        ts_value = self._ts_value
        out: list = []
        append = out.append
        last_ts, value = self._last_ts, self._last_ts_value
        seq, record = first_seq, None
        try:
            for seq, record in enumerate(pending, first_seq):
                ts, subject, rule, values, outputs = record
                if ts != last_ts:  # time stamps repeat; NaN merely misses
                    value = ts_value(ts)
                    last_ts = ts
                if type(subject) is not str and subject is not None:
                    subject = str(subject)
                append(makers[rule](seq, value, subject, values, outputs))
        except Exception as e:
            raise TrailError(self._describe_failure(seq, record, e)) from e
        self._last_ts, self._last_ts_value = last_ts, value
        return out

    def _describe_failure(self, seq: int, record, error: Exception) -> str:
        head = f"{self.path}: cannot record firing {seq} of run {self.run_id}"
        if record is None or not isinstance(record, tuple) or len(record) != 5:
            return f"{head}: {error}"
        rule = record[2]
        if rule not in self._safe_makers:
            return f"{head}: unknown rule key {rule!r} (get keys from Trail.rule())"
        ref = self._refs[rule]
        where = f"{head}, rule {ref.rule_id!r} ({ref.source_file}:{ref.source_line})"
        values = record[3]
        try:
            count = len(values)
        except TypeError:
            return f"{where}: values must be a tuple, got {type(values).__name__}"
        if count != len(ref.fields):
            return f"{where}: {count} values for fields {list(ref.fields)}"
        if isinstance(error, TrailError):
            return f"{where}: {error.message}"
        return f"{where}: {type(error).__name__}: {error}"

    def _ts_converter(self):
        """The function from a caller's time stamp to what the sink stores."""
        return None

    def close(self) -> None:
        """Flush and finish the run. Idempotent."""
        if self._closed:
            return
        try:
            self.flush()
            self._finish()
        finally:
            self._closed = True
            self._pending = _CLOSED
            self._release()

    def _finish(self) -> None:
        pass

    def _release(self) -> None:
        pass

    def __enter__(self) -> Trail:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path} run {self.run_id}, next seq {self.next_seq}>"


def _records(ts, subjects, rules, values, outputs) -> Iterator[tuple]:
    """Buffer tuples for ``add_many``, after checking that the columns fit together."""
    count = len(subjects)
    if len(values) != count:
        raise TrailError(f"add_many: {len(values)} values for {count} subjects")
    return zip(
        _column(ts, count, "ts", numbers.Real),
        subjects,
        _column(rules, count, "rules", numbers.Integral),
        values,
        _column(outputs, count, "outputs", str),
        strict=False,  # scalars repeat without end; the lengths were checked above
    )


def _column(value, count: int, name: str, scalar) -> Iterator:
    """A scalar repeats; a sequence must have one item per subject."""
    if value is None or isinstance(value, scalar) or not hasattr(value, "__len__"):
        return itertools.repeat(value)
    if len(value) != count:
        raise TrailError(f"add_many: {len(value)} {name} for {count} subjects")
    return iter(value)


class NullTrail(Trail):
    """The trail switched off: nothing is kept, but seqs are counted so action ids stay stable."""

    __slots__ = ("_next",)

    def __init__(self, clock: str = "wall", batch_size: int = 10_000) -> None:
        super().__init__("R1", None, clock, batch_size)  # as a fresh trail file would number it
        self._next = 1

    def add(self, ts, subject, rule: int, values: tuple, outputs: str | None = None) -> int:
        seq = self._next
        self._next = seq + 1
        return seq

    def add_many(self, ts, subjects, rules, values, outputs=None) -> int:
        if self._closed:
            raise TrailError("the trail is closed")
        _records(ts, subjects, rules, values, outputs)  # the same checks as with the trail on
        first = self._next
        self._next = first + len(subjects)
        return first

    @property
    def next_seq(self) -> int:
        return self._next

    def flush(self) -> None:
        pass


# ---------------------------------------------------------------------------
# SQLite


def _check_path(path: str, *, must_exist: bool) -> None:
    if os.path.isdir(path):
        raise TrailError(f"{path}: is a directory, not a trail file")
    if not os.path.exists(path):
        if must_exist:
            raise TrailError(f"{path}: no such trail file")
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise TrailError(f"{path}: cannot create the trail: folder {folder} does not exist")


def _check_sqlite_header(path: str) -> None:
    try:
        with open(path, "rb") as f:
            head = f.read(len(_SQLITE_MAGIC))
    except FileNotFoundError:
        return
    except OSError as e:
        raise TrailError(f"{path}: cannot read the trail: {e.strerror}") from None
    if head and head != _SQLITE_MAGIC:
        raise TrailError(f"{path}: not a SQLite trail (the file is not a SQLite database)")


def _trail_layout(con: sqlite3.Connection, path: str) -> str | None:
    """'rules' for a trail (rules stored once, ``trail`` a view), 'wide' for a trail in the
    one-table layout of earlier versions, None for an empty database; TrailError otherwise."""
    kinds = dict(con.execute(
        "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view')"))
    if not kinds:
        return None
    layout = "wide" if kinds.get("trail") == "table" else "rules"
    expected = [("trail", COLUMNS), ("trail_runs", RUN_COLUMNS)]
    if layout == "rules":
        expected += [("trail_rules", ("rule_key", *_RULE_COLUMNS)),
                     ("trail_records", _RECORD_COLUMNS)]
    for table, columns in expected:
        if table not in kinds:
            raise TrailError(f"{path}: not a trail (a SQLite database without table '{table}')")
        found = tuple(row[1] for row in con.execute(f"PRAGMA table_info({table})"))
        if found != columns:
            raise TrailError(
                f"{path}: not a trail (table '{table}' has columns {', '.join(found)};"
                f" expected {', '.join(columns)})"
            )
    return layout


def _meta_default(value):
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class SqliteTrail(Trail):
    """The embedded default sink; see the module docstring for the layout."""

    __slots__ = ("_con", "_inputs_column", "_insert", "_rule_keys", "_wide")

    def __init__(
        self, path: str, *, command: str, clock: str, meta: dict | None, batch_size: int
    ) -> None:
        _check_path(path, must_exist=False)
        _check_sqlite_header(path)
        try:
            meta_text = json.dumps(
                meta or {}, sort_keys=True, ensure_ascii=False, default=_meta_default
            )
        except (TypeError, ValueError) as e:
            raise TrailError(f"{path}: meta is not JSON: {e}") from None
        try:
            con = sqlite3.connect(path, isolation_level=None, timeout=_BUSY_TIMEOUT_S)
        except sqlite3.Error as e:
            raise TrailError(f"{path}: cannot open the trail: {e}") from None
        try:
            layout = _trail_layout(con, path)
            if layout is None:
                con.execute(f"PRAGMA page_size = {_PAGE_SIZE}")  # only before the first table
            con.execute("PRAGMA journal_mode = WAL")
            con.execute("PRAGMA synchronous = NORMAL")
            con.execute("BEGIN IMMEDIATE")  # counting runs and adding ours is one step
            if layout != "wide":
                for statement in _SCHEMA:
                    con.execute(statement)
            (runs,) = con.execute("SELECT count(*) FROM trail_runs").fetchone()
            run_id = f"R{runs + 1}"
            started = None if clock == "sim" else _iso_utc()
            con.execute(
                "INSERT INTO trail_runs VALUES (?, ?, NULL, ?, ?, ?, NULL)",
                (run_id, started, command, clock, meta_text),
            )
            con.execute("COMMIT")
        except (sqlite3.Error, TrailError) as e:
            con.close()
            if isinstance(e, TrailError):
                raise
            raise TrailError(f"{path}: cannot use as a trail: {e}") from None
        self._con = con
        self._wide = layout == "wide"
        self._inputs_column = COLUMNS.index("inputs") if self._wide else 4
        self._insert = _INSERT_WIDE if self._wide else _INSERT.format(run_id=run_id)
        self._rule_keys: dict[RuleRef, int] = {}
        super().__init__(run_id, path, clock, batch_size)

    def _maker(self, ref: RuleRef, outputs: str, encoders: _Encoders):
        pieces = tuple(_inputs_pieces(ref.fields))
        if self._wide:
            return _maker_factory("sqlite_wide", len(ref.fields))(
                self.run_id,
                ref.pack_id,
                ref.pack_version,
                ref.pack_sha256,
                ref.table_id,
                ref.rule_id,
                _rule_label(ref),
                ref.source_file,
                ref.source_line,
                pieces,
                outputs,
                encoders,
                self._canon,
            )
        return _maker_factory("sqlite", len(ref.fields))(
            self._rule_key(ref, outputs), pieces, encoders, self._canon
        )

    def _rule_key(self, ref: RuleRef, outputs: str) -> int:
        """The rule's row in ``trail_rules``: found, or added in a transaction of its own, so
        that writers sharing the file agree on keys."""
        key = self._rule_keys.get(ref)
        if key is not None:
            return key
        columns = (ref.pack_id, ref.pack_version, ref.pack_sha256, ref.table_id, ref.rule_id,
                   _rule_label(ref), ref.source_file, ref.source_line, outputs)
        con = self._con
        try:
            con.execute("BEGIN IMMEDIATE")
            try:
                row = con.execute(_FIND_RULE, columns).fetchone()
                key = row[0] if row else con.execute(_ADD_RULE, columns).lastrowid
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        except (sqlite3.Error, UnicodeEncodeError) as e:
            raise TrailError(f"{self.path}: cannot record rule {ref.rule_id!r}: {e}") from None
        self._rule_keys[ref] = key
        return key

    def _ts_converter(self):
        if self.clock == "sim":
            return _sim_time
        return _wall_clock_text()

    def _write(self, first_seq: int, pending: list) -> None:
        rows = self._format(first_seq, pending)
        column = self._inputs_column
        if _NON_FINITE.search("\n".join(map(operator.itemgetter(column), rows))):
            for i, row in enumerate(rows):
                if _NON_FINITE.search(row[column]):
                    rows[i] = self._format(first_seq + i, [pending[i]], safe=True)[0]
        con = self._con
        try:
            con.execute("BEGIN IMMEDIATE")
            try:
                con.executemany(self._insert, rows)
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        except (sqlite3.Error, UnicodeEncodeError) as e:  # the latter: a lone surrogate
            raise TrailError(f"{self.path}: cannot write run {self.run_id}: {e}") from None

    def _finish(self) -> None:
        con = self._con
        finished = None if self.clock == "sim" else _iso_utc()
        try:
            con.execute("BEGIN IMMEDIATE")
            for statement in _INDEXES_WIDE if self._wide else _INDEXES:
                con.execute(statement)
            if not self._wide:
                # statistics (a few ms, sampled) let queries on the view by rule_id go
                # through the rule's key rather than scan a run
                con.execute("PRAGMA analysis_limit = 1000")
                con.execute("ANALYZE")
            con.execute(
                "UPDATE trail_runs SET finished_at = ?, records = ? WHERE run_id = ?",
                (finished, self._written, self.run_id),
            )
            con.execute("COMMIT")
            # One self-contained file: fold the WAL back and empty it.
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as e:
            raise TrailError(f"{self.path}: cannot finish run {self.run_id}: {e}") from None

    def _release(self) -> None:
        self._con.close()


# ---------------------------------------------------------------------------
# JSON Lines


def _last_line_start(fd: int, end: int) -> int:
    """Offset of the line that ends at ``end`` (exclusive of its newline)."""
    chunk = 1 << 16
    pos = end
    while pos > 0:
        start = max(0, pos - chunk)
        data = os.pread(fd, pos - start, start)
        cut = data.rfind(b"\n")
        if cut >= 0:
            return start + cut + 1
        pos = start
    return 0


def _parse_line(raw: bytes, path: str, where: str) -> dict:
    try:
        record = json.loads(raw)
    except ValueError as e:
        raise TrailError(f"{path}:{where}: not a trail record ({e})") from None
    if not isinstance(record, dict) or tuple(record) != COLUMNS:
        raise TrailError(
            f"{path}:{where}: not a trail record (expected the keys {', '.join(COLUMNS)})"
        )
    return record


def _run_number(run_id, path: str, where: str) -> int:
    if isinstance(run_id, str) and run_id[:1] == "R" and run_id[1:].isdigit():
        return int(run_id[1:])
    raise TrailError(f"{path}:{where}: not a trail record (run_id {run_id!r} is not R<number>)")


class JsonlTrail(Trail):
    """One JSON object per line; see the module docstring for the layout."""

    __slots__ = ("_fd",)

    def __init__(self, path: str, *, clock: str, batch_size: int) -> None:
        _check_path(path, must_exist=False)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
        except OSError as e:
            raise TrailError(f"{path}: cannot open the trail: {e.strerror}") from None
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    raise TrailError(f"{path}: another process is writing this trail") from None
            last_run = self._recover(fd, path)
        except BaseException:
            os.close(fd)
            raise
        super().__init__(f"R{last_run + 1}", path, clock, batch_size, binary=True)
        self._fd = fd

    @staticmethod
    def _recover(fd: int, path: str) -> int:
        """Cut a torn last line left by a killed writer; return the last run's number."""
        size = os.fstat(fd).st_size
        if size == 0:
            return 0
        if not os.pread(fd, len(_JSONL_START), 0).startswith(_JSONL_START):
            # Checked before cutting anything: never truncate a file that is not ours.
            raise TrailError(f"{path}: not a JSONL trail (the first line is not a trail record)")
        end = size
        if os.pread(fd, 1, size - 1) != b"\n":
            end = _last_line_start(fd, size)
            os.ftruncate(fd, end)
            if end == 0:
                return 0
        start = _last_line_start(fd, end - 1)
        record = _parse_line(os.pread(fd, end - start, start), path, "last line")
        return _run_number(record["run_id"], path, "last line")

    def _maker(self, ref: RuleRef, outputs: str, encoders: _Encoders):
        static = {
            "pack_id": ref.pack_id,
            "pack_version": ref.pack_version,
            "pack_sha256": ref.pack_sha256,
            "table_id": ref.table_id,
            "rule_id": ref.rule_id,
            "rule_label": _rule_label(ref),
            "source_file": ref.source_file,
            "source_line": ref.source_line,
        }
        static_text = json.dumps(static, ensure_ascii=False)[1:-1]  # '"pack_id": ..., 12'
        pieces = [_escape_percent(piece) for piece in _inputs_pieces(ref.fields)]
        inputs = "%b".join(pieces)
        run_id = _escape_percent(encode_basestring(self.run_id))
        head = f'{{"run_id": {run_id}, "seq": %d, "ts": %b, "subject": %b, '
        line = f'{head}{_escape_percent(static_text)}, "inputs": {inputs}, "outputs": %b}}\n'
        return _maker_factory("jsonl", len(ref.fields))(
            line.encode(), outputs.encode(), encoders, self._canon
        )

    def _ts_converter(self):
        if self.clock == "sim":
            return _sim_time_json
        return _wall_clock_text(json_bytes=True)

    def _write(self, first_seq: int, pending: list) -> None:
        lines = self._format(first_seq, pending)
        data = b"".join(lines)
        if _NON_FINITE_BYTES.search(data):
            for i, line in enumerate(lines):
                if _NON_FINITE_BYTES.search(line):
                    lines[i] = self._format(first_seq + i, [pending[i]], safe=True)[0]
            data = b"".join(lines)
        fd = self._fd
        size = os.fstat(fd).st_size
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(fd, view) :]
        except OSError as e:
            # Take back a partial batch, so that later lines never follow a torn one.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise TrailError(f"{self.path}: cannot write run {self.run_id}: {e.strerror}") from None

    def _finish(self) -> None:
        try:
            os.fsync(self._fd)
        except OSError as e:
            raise TrailError(
                f"{self.path}: cannot finish run {self.run_id}: {e.strerror}"
            ) from None

    def _release(self) -> None:
        os.close(self._fd)  # also drops the lock


# ---------------------------------------------------------------------------
# public functions


def _is_jsonl(path: str) -> bool:
    return path.lower().endswith(".jsonl")


def open_trail(
    path: str | os.PathLike | None,
    *,
    command: str = "",
    clock: str = "wall",
    meta: dict | None = None,
    batch_size: int = 10_000,
) -> Trail:
    """Open a trail for a new run: None -> NullTrail, ``*.jsonl`` -> JSONL, else SQLite.

    ``clock`` is 'wall' (callers pass ``time.time()``) or 'sim' (callers pass
    simulation time). ``command`` and ``meta`` describe the run in
    ``trail_runs`` (SQLite only).
    """
    if clock not in CLOCKS:
        raise TrailError(f"clock must be 'wall' or 'sim', not {clock!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise TrailError(f"batch_size must be a positive int, not {batch_size!r}")
    if path is None:
        return NullTrail(clock, batch_size)
    path = os.fspath(path)
    if _is_jsonl(path):
        return JsonlTrail(path, clock=clock, batch_size=batch_size)
    return SqliteTrail(path, command=command, clock=clock, meta=meta, batch_size=batch_size)


def _connect_reader(path: str) -> sqlite3.Connection:
    _check_path(path, must_exist=True)
    _check_sqlite_header(path)
    # mode=rw, not ro: it still never creates a file, and as the last connection
    # it removes the -wal and -shm files that a read-only one would leave behind.
    uri = "file:" + path.replace("%", "%25").replace("?", "%3f").replace("#", "%23") + "?mode=rw"
    con = None
    try:
        con = sqlite3.connect(uri, uri=True, timeout=_BUSY_TIMEOUT_S)
        if _trail_layout(con, path) is None:
            raise TrailError(f"{path}: not a trail (an empty SQLite database)")
    except (sqlite3.Error, TrailError) as e:
        if con is not None:
            con.close()
        if isinstance(e, TrailError):
            raise
        raise TrailError(f"{path}: cannot read as a trail: {e}") from None
    return con


def read_trail(
    path: str | os.PathLike,
    *,
    run_id: str | None = None,
    subject: str | None = None,
    rule_id: str | None = None,
    seq: int | None = None,
) -> Iterator[dict]:
    """Trail records (dicts of ``COLUMNS``) matching all given filters, by run then seq.

    Works on both sinks and gives the same dicts for the same records;
    ``inputs`` and ``outputs`` are JSON text. The file is checked now; rows
    are read as the iterator is consumed.
    """
    path = os.fspath(path)
    if _is_jsonl(path):
        _check_jsonl_start(path)
        return _read_jsonl(path, run_id, subject, rule_id, seq)
    return _read_sqlite(_connect_reader(path), path, run_id, subject, rule_id, seq)


def _read_sqlite(con, path, run_id, subject, rule_id, seq) -> Iterator[dict]:
    conditions = ["run_id = ?"]
    params: list = []
    for column, value in (("subject", subject), ("rule_id", rule_id), ("seq", seq)):
        if value is not None:
            conditions.append(f"{column} = ?")
            params.append(value)
    query = f"SELECT {', '.join(COLUMNS)} FROM trail WHERE {' AND '.join(conditions)} ORDER BY seq"
    try:
        if run_id is None:
            runs = [
                row[0]
                for row in con.execute(f"SELECT run_id FROM trail_runs ORDER BY {_RUN_ORDER}")
            ]
        else:
            runs = [run_id]
        # One query per run keeps the primary key's order: no sort of the whole trail.
        for run in runs:
            for row in con.execute(query, [run, *params]):
                yield dict(zip(COLUMNS, row, strict=True))
    except sqlite3.Error as e:
        raise TrailError(f"{path}: cannot read the trail: {e}") from None
    finally:
        con.close()


def _check_jsonl_start(path: str) -> None:
    _check_path(path, must_exist=True)
    try:
        with open(path, "rb") as f:
            head = f.read(len(_JSONL_START))
    except OSError as e:
        raise TrailError(f"{path}: cannot read the trail: {e.strerror}") from None
    if head and not head.startswith(_JSONL_START):
        raise TrailError(f"{path}: not a JSONL trail (the first line is not a trail record)")


def _jsonl_lines(path: str) -> Iterator[tuple[int, bytes]]:
    """Whole lines with their numbers; a torn last line (no newline yet) is skipped."""
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            if raw.endswith(b"\n"):
                yield number, raw


def _read_jsonl(path, run_id, subject, rule_id, seq) -> Iterator[dict]:
    # Lines begin '{"run_id": "R3", ', so runs are filtered without parsing.
    prefix = None if run_id is None else f'{{"run_id": {encode_basestring(run_id)}, '.encode()
    for number, raw in _jsonl_lines(path):
        if prefix is not None and not raw.startswith(prefix):
            continue
        record = _parse_line(raw, path, str(number))
        if (
            (subject is not None and record["subject"] != subject)
            or (rule_id is not None and record["rule_id"] != rule_id)
            or (seq is not None and record["seq"] != seq)
        ):
            continue
        record["inputs"] = _canonical_json(record["inputs"])
        record["outputs"] = _canonical_json(record["outputs"])
        yield record


def list_runs(path: str | os.PathLike) -> list[dict]:
    """The runs in a trail file (dicts of ``RUN_COLUMNS``), in the order they began.

    For JSONL, which has no run table, runs are derived from the records:
    ``records`` is the number of lines, ``clock`` follows from the type of
    ``ts``, and the other columns are None.
    """
    path = os.fspath(path)
    if _is_jsonl(path):
        _check_jsonl_start(path)
        return _jsonl_runs(path)
    con = _connect_reader(path)
    try:
        rows = con.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM trail_runs ORDER BY {_RUN_ORDER}")
        return [dict(zip(RUN_COLUMNS, row, strict=True)) for row in rows]
    except sqlite3.Error as e:
        raise TrailError(f"{path}: cannot read the trail: {e}") from None
    finally:
        con.close()


def _jsonl_runs(path: str) -> list[dict]:
    runs: dict[str, dict] = {}
    for number, raw in _jsonl_lines(path):
        key = raw[: raw.find(b'"', len(_JSONL_START))]  # '{"run_id": "R3', without parsing
        run = runs.get(key)
        if run is None:
            record = _parse_line(raw, path, str(number))
            _run_number(record["run_id"], path, str(number))
            clock = "wall" if isinstance(record["ts"], str) else "sim"
            run = runs[key] = dict.fromkeys(RUN_COLUMNS)
            run.update(run_id=record["run_id"], clock=clock, records=0)
        run["records"] += 1
    return list(runs.values())
