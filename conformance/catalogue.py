"""The clause catalogue: every clause and item of the five standards, from ``fixtures/clauses/``.

One YAML file per standard (``ISC-2.yaml`` …) lists its clauses with the Chinese text quoted
from the seed, an English summary, the level (shall/should/may), the testability class, the
parameters the clause sets, cross-references and known conflicts. ``load_catalogue`` validates
all files together and raises ``CatalogueInvalid`` listing every problem, each naming the file,
the line, the clause ID and the field, so a drafter can fix a file in one pass.

IDs follow ``../shared/CLAUSES.md``: ``ISC-2 §9.2``, items ``ISC-2 §7.2.4(4)``, lettered items
``CPCIF §8.3 b)`` and a numbered item under a lettered one ``CSMT §9.4 a) 1)``. Annexes are
``§A``/``§A.1``. Where a seed repeats a number (ISC-2 has two §7.4.2.1 and two lists numbered
(1)… in §7.2.3) the second occurrence carries ``bis`` (``ISC-2 §7.4.2.1bis``,
``ISC-2 §7.2.3(2bis)``); when CLAUSES.md already uses the plain number for one of them, that
one keeps it.

Coverage (see ``Catalogue.coverage``) is exact: a test covers the IDs its ``clause`` marker
names and nothing else. Naming an item does not cover its parent and naming a parent does not
cover its items. Headings (a title or a lead-in sentence whose requirements all sit in the items
below) have no testability of their own and are not counted; a marker naming one is reported.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from common import yaml_input

REPO = Path(__file__).resolve().parent.parent
CATALOGUE_DIR = REPO / "fixtures" / "clauses"
# The seeds live beside the checkout (../shared/seeds); a user's machine may not have them.
SEEDS_DIR = REPO.parent / "shared" / "seeds"

Standard = Literal["ISC-2", "CSMT", "SSEA", "CPCIF", "ISC-1"]
STANDARDS: tuple[str, ...] = get_args(Standard)
Kind = Literal["clause", "item", "heading", "annex"]
Level = Literal["shall", "should", "may"]
Testability = Literal["auto", "lab", "declared", "n/a"]
TESTABILITIES: tuple[str, ...] = get_args(Testability)
Area = Literal[
    "acquisition",
    "processing",
    "accuracy",
    "latency",
    "storage",
    "upload",
    "operations",
    "security",
    "accounting",
    "platform",
    "hardware",
    "organisation",
]
AREAS: tuple[str, ...] = get_args(Area)
LEVELS: tuple[str, ...] = get_args(Level)
Op = Literal["==", "!=", "<", "<=", ">", ">=", "between", "includes", "one_of"]

# Units a parameter may carry: a closed list, so "mins" or "hr" is caught as a typo.
UNITS = frozenset(
    {
        "ms",
        "s",
        "min",
        "h",
        "d",
        "working day",
        "week",
        "month",
        "year",
        "count",
        "%",
        "V",
        "Hz",
        "GHz",
        "GB",
        "inch",
        "°C",
        "kPa",
        "t CO2e/year",
        "Mbit/s",
    }
)

_SECTION = r"(?:\d+|A)(?:\.\d+)*(?:bis)?"
_ITEM = r"\(\d+(?:bis)?\)"
_LETTER = r" [a-z]\)(?: \d+\))?"
ID_PATTERN = re.compile(
    rf"^(?P<std>{'|'.join(map(re.escape, STANDARDS))}) §(?P<section>{_SECTION})"
    rf"(?P<items>(?:{_ITEM})*)(?P<letter>{_LETTER})?$"
)
MAX_QUOTE = 600  # characters: a sentence or an item, never a page
# libyaml when present: the catalogue is ~8000 lines and the pure-Python parser takes a second
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def canonical_id(raw: str) -> str:
    """The catalogue's spelling of a clause ID as a person might type it in a marker.

    Full-width brackets and runs of spaces are normalised, and spaces before "(" or after "§"
    dropped: "ISC-2 § 7.2.4 （4）" becomes "ISC-2 §7.2.4(4)". Nothing else is guessed.
    """
    text = unicodedata.normalize("NFKC", raw).strip()
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"§ ", "§", text)
    return re.sub(r" \((?=\d)", "(", text)


def compact_id(clause_id: str) -> str:
    """A clause ID for a test-case ID: ``ISC-2 §7.1.1 b)`` → ``ISC2-7.1.1b``,
    ``ISC-2 §7.2.2(1) b)`` → ``ISC2-7.2.2(1)b`` (an item's number keeps its parentheses)."""
    standard, _, number = clause_id.partition(" §")
    number = re.sub(r"\s+([0-9A-Za-z]+)\)", r"\1", number.strip())  # " b)" → "b"
    return f"{standard.replace('-', '')}-{re.sub(r'[^0-9A-Za-z.()]', '', number)}"


def parent_id(clause_id: str) -> str | None:
    """The enclosing clause: the item's clause, or the section one level up (None at top)."""
    match = ID_PATTERN.match(clause_id)
    if match is None:
        return None
    std, section, items, letter = match["std"], match["section"], match["items"], match["letter"]
    if letter:
        nested = re.fullmatch(r"( [a-z]\)) \d+\)", letter)
        return f"{std} §{section}{items}{nested[1]}" if nested else f"{std} §{section}{items}"
    if items:
        return f"{std} §{section}{items[: items.rindex('(')]}"
    base = section.removesuffix("bis")
    return f"{std} §{base.rsplit('.', 1)[0]}" if "." in base else None


def _sort_key(clause_id: str) -> tuple[Any, ...]:
    """Document order: §7.2.10 after §7.2.9, items after their clause, bis after the plain one."""
    parts = re.findall(r"\d+|[A-Za-z]+|\S", clause_id.split("§", 1)[1])
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Parameter(_Strict):
    """A number or list a clause sets: ``{name: latency, op: "<=", value: 20, unit: ms}``."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    op: Op
    value: float | int | str | list[float | int | str]
    unit: str | None = None
    note: str | None = None

    @field_validator("unit")
    @classmethod
    def _known_unit(cls, unit: str | None) -> str | None:
        if unit is not None and unit not in UNITS:
            raise ValueError(f"unknown unit {unit!r}; known: {', '.join(sorted(UNITS))}")
        return unit

    @model_validator(mode="after")
    def _value_fits_op(self) -> Parameter:
        if self.op == "between":
            if not (isinstance(self.value, list) and len(self.value) == 2):
                raise ValueError("op 'between' takes value [low, high]")
        elif self.op in ("includes", "one_of"):
            if not isinstance(self.value, list) or not self.value:
                raise ValueError(f"op {self.op!r} takes a non-empty list")
        elif isinstance(self.value, list):
            raise ValueError(f"op {self.op!r} takes one value, not a list")
        return self


#: ops a recorded number can be judged by
NUMERIC_OPS = frozenset({"==", "<", "<=", ">", ">=", "between"})


class Procedure(_Strict):
    """How a clause the bench cannot measure gets its verdict: the steps an operator takes
    (testability ``lab``) or what the vendor declares (``declared``), recorded with the run
    (``conformance.operator``) and judged against the clause's parameters."""

    steps: list[str] = Field(min_length=1)  # lab: what to do; declared: what to declare
    observe: str = Field(min_length=1)  # what the operator looks for; it passes when seen
    values: list[str] = []  # parameters the record carries, each judged against its limit
    evidence: bool = False  # a photo, test report or other file belongs to the record


class Conflict(_Strict):
    """Another clause this one disagrees with, and why in one line."""

    id: str
    why: str = Field(min_length=1)


class Clause(_Strict):
    """One clause, item, heading or annex of a standard."""

    id: str
    kind: Kind
    title: str | None = None  # the heading as printed in the seed, for clauses that have one
    text: list[str] = []  # verbatim quotes from the seed (whitespace aside)
    summary: str | None = None
    level: Level | None = None
    modal: str | None = None  # the Chinese word the level was read from: 应, 宜, 可, 必须, 支持…
    testability: Testability | None = None
    area: Area | None = None
    parameters: list[Parameter] = []
    cross_refs: list[str] = []
    conflicts: list[Conflict] = []
    unclear: list[str] = []  # wording a drafter should fix; the bench's reading is in notes
    notes: str | None = None
    data: list[str] | None = None  # annex tables and lists carried as data
    procedure: Procedure | None = None  # lab and declared clauses: how they are judged
    #: what the tests of an auto clause leave unjudged: its verdict is then reported as partial
    judged_in_part: str | None = Field(None, min_length=10)

    @field_validator("id")
    @classmethod
    def _well_formed(cls, value: str) -> str:
        if not ID_PATTERN.match(value):
            raise ValueError(
                f"{value!r} is not an ID like 'ISC-2 §9.2', 'ISC-2 §7.2.4(4)' or 'CPCIF §8.3 b)'"
            )
        return value

    @field_validator("text")
    @classmethod
    def _short_quotes(cls, quotes: list[str]) -> list[str]:
        for quote in quotes:
            if len(quote) > MAX_QUOTE:
                raise ValueError(f"a quote of {len(quote)} characters: quote sentences, not pages")
        return quotes

    @model_validator(mode="after")
    def _fields_for_kind(self) -> Clause:
        has_letter_or_item = bool(re.search(r"\)$", self.id))
        if self.kind == "item" and not has_letter_or_item:
            raise ValueError("kind 'item' needs an item ID such as '… §7.2.4(4)' or '… §8.3 b)'")
        if self.kind in ("clause", "annex") and has_letter_or_item:
            raise ValueError(f"an item ID needs kind 'item' or 'heading', not {self.kind!r}")
        if self.kind in ("clause", "item"):
            missing = [
                name
                for name in ("summary", "level", "testability", "area")
                if getattr(self, name) is None
            ]
            if not self.text:
                missing.insert(0, "text")
            if missing:
                raise ValueError(f"a requirement needs {', '.join(missing)}")
        elif self.level is not None or self.testability is not None:
            raise ValueError(f"a {self.kind} states no requirement: drop level and testability")
        if self.judged_in_part is not None and self.testability != "auto":
            raise ValueError("judged_in_part is for auto clauses (their tests judge a part)")
        if self.procedure is not None:
            if self.testability not in ("lab", "declared"):
                raise ValueError(
                    "a procedure is for lab and declared clauses (auto ones have tests)"
                )
            numeric = {p.name for p in self.parameters if p.op in NUMERIC_OPS}
            unknown = [v for v in self.procedure.values if v not in numeric]
            if unknown:
                raise ValueError(
                    f"procedure.values {unknown}: not a numeric parameter of this clause "
                    f"(has {sorted(numeric) or 'none'})"
                )
        return self

    @property
    def standard(self) -> str:
        return self.id.split(" ", 1)[0]

    @property
    def parent(self) -> str | None:
        return parent_id(self.id)

    @property
    def is_requirement(self) -> bool:
        """Clauses and items count for coverage; headings and annexes do not."""
        return self.kind in ("clause", "item")


class StandardFile(_Strict):
    """One YAML file: the document it catalogues and its clauses in document order."""

    standard: Standard
    document: str
    document_en: str
    seed: str  # file name in ../shared/seeds
    notes: str | None = None
    clauses: list[dict[str, Any]]  # validated one by one so errors name the clause


@dataclass(frozen=True)
class CatalogueError:
    """One problem, located: file, line, clause ID and field."""

    file: str
    clause_id: str | None
    field: str | None
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        parts = [where, self.clause_id, self.field]
        return ": ".join(p for p in parts if p) + f": {self.message}"


class CatalogueInvalid(Exception):
    """The catalogue failed validation; ``errors`` lists every problem found."""

    def __init__(self, errors: list[CatalogueError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


@dataclass(frozen=True)
class StandardCoverage:
    standard: str
    auto: int  # auto clauses and items
    covered: int  # of those, named by at least one test
    untested: list[str]
    lab: int = 0  # lab clauses with an operator procedure
    declared: int = 0  # declared clauses with a declaration to record
    not_applicable: int = 0  # n/a: not a requirement on the terminal (none needed)
    #: lab and declared clauses with no procedure (and the untested auto ones above)
    without_procedure: list[str] = field(default_factory=list)
    #: covered auto clauses whose tests judge a part only (``judged_in_part``)
    partial: list[str] = field(default_factory=list)

    @property
    def percent(self) -> float | None:
        return 100.0 * self.covered / self.auto if self.auto else None

    @property
    def with_procedure_percent(self) -> float | None:
        """Applicable requirements with a procedure: a test, an operator's or a declaration."""
        applicable = self.auto + self.lab + self.declared + len(self.without_procedure)
        done = self.covered + self.lab + self.declared
        return 100.0 * done / applicable if applicable else None


@dataclass(frozen=True)
class Coverage:
    """Per-standard auto-clause coverage, and the marker IDs that cover nothing."""

    standards: list[StandardCoverage]
    unknown: list[str] = field(default_factory=list)  # not in the catalogue
    headings: list[str] = field(default_factory=list)  # headings/annexes: name their items
    not_auto: list[str] = field(default_factory=list)  # lab/declared/n/a: tested, not counted

    def for_standard(self, standard: str) -> StandardCoverage:
        return next(s for s in self.standards if s.standard == standard)


@dataclass(frozen=True)
class Source:
    file: Path
    line: int


class Catalogue:
    """All clauses of all standards, in document order per standard."""

    def __init__(
        self,
        files: dict[str, StandardFile],
        clauses: list[Clause],
        sources: dict[str, Source] | None = None,
    ) -> None:
        self.files = files
        self._clauses = clauses
        self._by_id = {c.id: c for c in clauses}
        self.sources = sources or {}

    def __iter__(self) -> Iterator[Clause]:
        return iter(self._clauses)

    def __len__(self) -> int:
        return len(self._clauses)

    def __contains__(self, clause_id: object) -> bool:
        return isinstance(clause_id, str) and canonical_id(clause_id) in self._by_id

    def get(self, clause_id: str) -> Clause:
        """The clause with this ID (spelling normalised); KeyError names close matches."""
        key = canonical_id(clause_id)
        try:
            return self._by_id[key]
        except KeyError:
            import difflib  # noqa: PLC0415 - only for the error message

            close = difflib.get_close_matches(key, list(self._by_id), n=3, cutoff=0.8)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise KeyError(f"no clause {key!r} in the catalogue{hint}") from None

    __getitem__ = get

    def children(self, clause_id: str) -> list[Clause]:
        key = canonical_id(clause_id)
        return [c for c in self._clauses if c.parent == key]

    def filter(
        self,
        *,
        standard: str | None = None,
        area: str | None = None,
        testability: str | None = None,
        level: str | None = None,
        requirements_only: bool = False,
    ) -> list[Clause]:
        """Clauses matching every given criterion (None matches anything)."""
        return [
            c
            for c in self._clauses
            if (standard is None or c.standard == standard)
            and (area is None or c.area == area)
            and (testability is None or c.testability == testability)
            and (level is None or c.level == level)
            and (not requirements_only or c.is_requirement)
        ]

    def coverage(self, tested_ids: Iterable[str]) -> Coverage:
        """Which auto clauses have at least one test, per standard.

        A test covers exactly the IDs its marker names (spelling normalised by
        ``canonical_id``). Items and their parent clause are counted separately.
        """
        tested = {canonical_id(i) for i in tested_ids}
        unknown = sorted(i for i in tested if i not in self._by_id)
        known = [self._by_id[i] for i in tested if i in self._by_id]
        headings = sorted((c.id for c in known if not c.is_requirement), key=_sort_key)
        not_auto = sorted(
            (c.id for c in known if c.is_requirement and c.testability != "auto"), key=_sort_key
        )
        per_standard = []
        for standard in STANDARDS:
            auto = self.filter(standard=standard, testability="auto", requirements_only=True)
            untested = [c.id for c in auto if c.id not in tested]
            others = [c for c in self.filter(standard=standard, requirements_only=True)
                      if c.testability != "auto"]  # fmt: skip
            ruled = [c for c in others if c.procedure is not None]
            per_standard.append(
                StandardCoverage(
                    standard,
                    len(auto),
                    len(auto) - len(untested),
                    untested,
                    lab=sum(1 for c in ruled if c.testability == "lab"),
                    declared=sum(1 for c in ruled if c.testability == "declared"),
                    not_applicable=sum(1 for c in others if c.testability == "n/a"),
                    without_procedure=[
                        c.id for c in others if c.testability != "n/a" and c.procedure is None
                    ],
                    partial=[c.id for c in auto if c.id in tested and c.judged_in_part],
                )
            )
        return Coverage(per_standard, unknown, headings, not_auto)


def _line_numbers(text: str) -> list[int]:
    """1-based line of each entry of the top-level ``clauses`` list (for error messages)."""
    try:
        root = yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError:
        return []
    if not isinstance(root, yaml.MappingNode):
        return []
    for key, value in root.value:
        if key.value == "clauses" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def _pydantic_errors(
    exc: ValidationError, file: str, clause_id: str | None, line: int | None
) -> list[CatalogueError]:
    errors = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or None
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "literal_error":
            message = f"{err['input']!r} is not one of {err['ctx']['expected']}"
        elif err["type"] == "extra_forbidden":
            message = "unknown field"
        errors.append(CatalogueError(file, clause_id, loc, message, line))
    return errors


def _load_file(
    path: Path, errors: list[CatalogueError]
) -> tuple[StandardFile | None, list[tuple[Clause, int | None]]]:
    name = path.name
    text = path.read_text(encoding="utf-8")
    try:
        raw = yaml_input.load(text)
    except yaml.YAMLError as exc:
        errors.append(CatalogueError(name, None, None, f"not YAML: {exc}"))
        return None, []
    if not isinstance(raw, dict):
        errors.append(CatalogueError(name, None, None, "expected a mapping with 'clauses'"))
        return None, []
    try:
        doc = StandardFile.model_validate(raw)
    except ValidationError as exc:
        errors.extend(_pydantic_errors(exc, name, None, None))
        return None, []
    if name != f"{doc.standard}.yaml":
        message = f"{doc.standard} belongs in {doc.standard}.yaml"
        errors.append(CatalogueError(name, None, "standard", message))
    lines = _line_numbers(text)
    clauses = []
    for index, entry in enumerate(doc.clauses):
        line = lines[index] if index < len(lines) else None
        raw_id = entry.get("id") if isinstance(entry, dict) else None
        clause_id = raw_id if isinstance(raw_id, str) else f"clauses[{index}]"
        try:
            clause = Clause.model_validate(entry)
        except ValidationError as exc:
            errors.extend(_pydantic_errors(exc, name, clause_id, line))
            continue
        if clause.standard != doc.standard:
            errors.append(CatalogueError(name, clause.id, "id", f"not a {doc.standard} ID", line))
        clauses.append((clause, line))
    return doc, clauses


def _cross_checks(catalogue: Catalogue) -> list[CatalogueError]:
    """What one clause cannot check alone: parents, references and conflicts both ways."""
    errors = []

    def err(clause: Clause, field_name: str, message: str) -> None:
        source = catalogue.sources.get(clause.id)
        file = source.file.name if source else f"{clause.standard}.yaml"
        line = source.line if source else None
        errors.append(CatalogueError(file, clause.id, field_name, message, line))

    for clause in catalogue:
        parent = clause.parent
        if parent is not None and parent not in catalogue:
            err(clause, "id", f"its parent {parent} is not in the catalogue")
        for ref in clause.cross_refs:
            if ref not in catalogue:
                err(clause, "cross_refs", f"{ref} is not in the catalogue")
            elif ref == clause.id:
                err(clause, "cross_refs", "refers to itself")
        for conflict in clause.conflicts:
            if conflict.id not in catalogue:
                err(clause, "conflicts", f"{conflict.id} is not in the catalogue")
            elif conflict.id == clause.id:
                err(clause, "conflicts", "conflicts with itself: say it under 'unclear'")
            elif clause.id not in {c.id for c in catalogue.get(conflict.id).conflicts}:
                err(clause, "conflicts", f"{conflict.id} does not list this conflict back")
    return errors


def load_catalogue(directory: Path = CATALOGUE_DIR) -> Catalogue:
    """Load and validate every ``<standard>.yaml`` under ``directory``.

    Raises ``CatalogueInvalid`` with every problem found (not only the first).
    """
    errors: list[CatalogueError] = []
    paths = sorted(directory.glob("*.yaml"))
    if not paths:
        raise CatalogueInvalid([CatalogueError(str(directory), None, None, "no *.yaml files")])
    files: dict[str, StandardFile] = {}
    clauses: list[Clause] = []
    sources: dict[str, Source] = {}
    for path in paths:
        doc, loaded = _load_file(path, errors)
        if doc is None:
            continue
        if doc.standard in files:
            errors.append(CatalogueError(path.name, None, "standard", "a second file for it"))
        files[doc.standard] = doc
        for clause, line in loaded:
            if clause.id in sources:
                first = sources[clause.id]
                errors.append(
                    CatalogueError(
                        path.name,
                        clause.id,
                        "id",
                        f"duplicate ID (first at {first.file.name}:{first.line})",
                        line,
                    )
                )
                continue
            sources[clause.id] = Source(path, line or 0)
            clauses.append(clause)
    order = {s: i for i, s in enumerate(STANDARDS)}
    clauses.sort(key=lambda c: (order[c.standard], _sort_key(c.id)))
    catalogue = Catalogue(files, clauses, sources)
    errors.extend(_cross_checks(catalogue))
    if errors:
        raise CatalogueInvalid(errors)
    return catalogue


def normalise_for_quote(text: str) -> str:
    """Seed text as compared with quotes: whitespace and markdown bold marks do not count.

    The seeds are text extracted from Word/PDF: sentences break across lines and carry stray
    spaces ("碳排放在 线监测"), some items are in **bold** and tables are "| cell |" rows.
    Punctuation must match exactly (ISC-2 uses half-width commas, the others full-width).
    """
    return re.sub(r"[\s|]+", "", text.replace("**", ""))


def check_quotes(catalogue: Catalogue, seeds_dir: Path = SEEDS_DIR) -> list[CatalogueError]:
    """Every quote, title and data row of every clause, found in its standard's seed file.

    Separate from ``load_catalogue`` because the seeds sit outside the repository
    (``../shared/seeds``) and may be missing on a user's machine.
    """
    errors = []
    for standard, doc in catalogue.files.items():
        seed_path = seeds_dir / doc.seed
        if not seed_path.is_file():
            errors.append(CatalogueError(f"{standard}.yaml", None, "seed", f"{seed_path} missing"))
            continue
        seed = normalise_for_quote(seed_path.read_text(encoding="utf-8"))
        for clause in catalogue.filter(standard=standard):
            source = catalogue.sources.get(clause.id)
            line = source.line if source else None
            quotes = [("title", clause.title)] if clause.title else []
            quotes += [(f"text.{i}", q) for i, q in enumerate(clause.text)]
            quotes += [(f"data.{i}", row) for i, row in enumerate(clause.data or [])]
            for field_name, quote in quotes:
                if normalise_for_quote(quote) not in seed:
                    errors.append(
                        CatalogueError(
                            f"{standard}.yaml",
                            clause.id,
                            field_name,
                            f"not found in {doc.seed}: {quote[:40]}…",
                            line,
                        )
                    )
    return errors
