"""The catalogue against its sources: the seeds' Chinese text and CLAUSES.md's clause IDs.

Both live beside the checkout in ``../shared``; on a machine without it these specs skip and
say so. The checking functions themselves are specified on small files made here.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from conformance.catalogue import SEEDS_DIR, check_quotes, load_catalogue, normalise_for_quote
from tests.conformance.test_catalogue import BASE, requirement, write_catalogue

CLAUSES_MD = SEEDS_DIR.parent / "CLAUSES.md"
needs_seeds = pytest.mark.skipif(
    not SEEDS_DIR.is_dir(), reason=f"the standards' text is not here ({SEEDS_DIR})"
)
needs_clauses_md = pytest.mark.skipif(
    not CLAUSES_MD.is_file(), reason=f"the clause map is not here ({CLAUSES_MD})"
)

_STANDARD = r"ISC-2|ISC-1|SSEA|CSMT|CPCIF"
# A standard's name, another document's name (its § numbers are not ours), or a § reference
# with an optional item and an optional range end ("§7.1.2–7.1.4", "§9.1–§9.4").
_TOKEN = re.compile(
    rf"(?P<standard>\b(?:{_STANDARD})\b)"
    r"|(?P<other>\b(?:DB|GB|HJ|JJF|ISO)\S*\s?[\d./-]+)"
    r"|§(?P<number>\d+(?:\.\d+)*)(?P<item>\(\d+\))?(?:–§?(?P<end>\d+(?:\.\d+)*))?"
)


def clause_ids_in(markdown: str) -> set[str]:
    """Clause IDs as CLAUSES.md writes them: a bare "§9.1" belongs to the standard last named
    on its line; "§7.1.2–7.1.4" means each clause of the range; lettered items ("§7.2.2
    a)–e)") are taken as their clause."""
    ids: set[str] = set()
    for line in markdown.splitlines():
        standard: str | None = None
        for token in _TOKEN.finditer(line):
            if token["standard"]:
                standard = token["standard"]
            elif token["other"]:
                standard = None
            elif standard is not None:
                ids |= {f"{standard} §{n}" for n in _expand(token["number"], token["end"])}
                if token["item"]:
                    ids.add(f"{standard} §{token['number']}{token['item']}")
    return ids


def _expand(start: str, end: str | None) -> list[str]:
    if end is None:
        return [start]
    head, _, first = start.rpartition(".")
    end_head, _, last = end.rpartition(".")
    if head != end_head:
        return [start, end]
    prefix = f"{head}." if head else ""
    return [f"{prefix}{n}" for n in range(int(first), int(last) + 1)]


def test_clause_ids_are_read_from_clauses_md_as_a_person_would() -> None:
    text = (
        "- ISC-2 §6.2, §7.2.2(2); CSMT §4, §7.1 — read Modbus (GB/T 19582) meters.\n"
        "- CSMT §10.3–10.5 and ISC-2 §7.1.2–7.1.4; CSMT §9.1–§9.4.\n"
        "- CSMT §7.2 — codes (after DB35/T 2000-2021 §8.4, §9).\n"
        "- ISC-2 §7.2.3 (1)–(2) conversion; CPCIF §5.2.1 d) library.\n"
    )
    assert clause_ids_in(text) == {
        "ISC-2 §6.2", "ISC-2 §7.2.2", "ISC-2 §7.2.2(2)", "CSMT §4", "CSMT §7.1",
        "CSMT §10.3", "CSMT §10.4", "CSMT §10.5",
        "ISC-2 §7.1.2", "ISC-2 §7.1.3", "ISC-2 §7.1.4",
        "CSMT §9.1", "CSMT §9.2", "CSMT §9.3", "CSMT §9.4",
        "CSMT §7.2", "ISC-2 §7.2.3", "CPCIF §5.2.1",
    }  # fmt: skip


@needs_clauses_md
def test_every_clause_clauses_md_names_is_in_the_catalogue() -> None:
    named = clause_ids_in(CLAUSES_MD.read_text(encoding="utf-8"))
    catalogue = load_catalogue()
    assert len(named) >= 90  # the parse found the map, not a handful of stray IDs
    assert sorted(i for i in named if i not in catalogue) == []


@needs_seeds
def test_every_quote_title_and_data_row_is_found_in_its_seed() -> None:
    assert [str(e) for e in check_quotes(load_catalogue())] == []


@needs_seeds
def test_an_altered_quote_is_caught_with_its_place(tmp_path: Path) -> None:
    for path in load_catalogue().files:
        shutil.copy(Path("fixtures/clauses") / f"{path}.yaml", tmp_path)
    isc2 = tmp_path / "ISC-2.yaml"
    isc2.write_text(isc2.read_text("utf-8").replace("时延要求在20ms以内", "时延要求在30ms以内"))
    (error,) = check_quotes(load_catalogue(tmp_path))
    assert (error.file, error.clause_id, error.field) == ("ISC-2.yaml", "ISC-2 §9.4", "text.0")
    assert error.message.startswith("not found in 000_e87078e1b874aa93.txt: 边缘计算性能")


def test_quotes_match_the_seed_whatever_its_line_breaks_and_markup(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    # as extracted from the PDF: a sentence broken over lines, a stray space, bold, a table
    (seeds / "ISC-2.txt").write_text(
        "9 性能要求\n- (1) **数据存储**:数据本地存储能\n\n力应不低于 5年。\n| 发电 | 化石燃料 |\n",
        "utf-8",
    )
    good = requirement("ISC-2 §9.3", text=["(1) 数据存储:数据本地存储能力应不低于5年。"])
    table = requirement("ISC-2 §9.5", text=["发电 化石燃料"], title="性能要求")
    bad = requirement("ISC-2 §9.6", text=["数据本地存储能力应不低于6年。"])
    catalogue = load_catalogue(write_catalogue(tmp_path / "cat", [BASE[0], good, table, bad]))
    assert [(e.clause_id, e.field) for e in check_quotes(catalogue, seeds)] == [
        ("ISC-2 §9.6", "text.0")
    ]


def test_punctuation_is_part_of_the_quote() -> None:
    # ISC-2 writes half-width commas, the others full-width: a quote must keep the seed's
    assert normalise_for_quote("应不低于5年,并") != normalise_for_quote("应不低于5年，并")
    assert normalise_for_quote(" a \n b\t| c **d**") == "abcd"


def test_a_missing_seed_file_is_reported_not_skipped(tmp_path: Path) -> None:
    catalogue = load_catalogue(write_catalogue(tmp_path / "cat", BASE))
    (error,) = check_quotes(catalogue, tmp_path / "no-seeds")
    assert (error.file, error.field) == ("ISC-2.yaml", "seed")
