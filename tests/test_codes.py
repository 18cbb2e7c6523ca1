from __future__ import annotations

import pytest

from service import iso
from service.codes import Codes, aliases, read_codes


def test_every_alias_reads_a_non_iso_code_as_an_iso_one() -> None:
    table = aliases()
    assert table["RU-CR"] == "UA-43" and table["RU-SEV"] == "UA-40"
    for vendor, code in table.items():
        assert not iso.is_subdivision(vendor), vendor
        assert iso.is_subdivision(code), code


@pytest.mark.parametrize(
    ("country", "subdivision", "expected"),
    [
        ("ua", "43", Codes("UA", "UA-43")),
        ("UA", "UA-43", Codes("UA", "UA-43")),  # a whole code is taken too
        ("RU", "CR", Codes("RU", "UA-43", "vendor code RU-CR read as UA-43")),
        ("RU", "SEV", Codes("RU", "UA-40", "vendor code RU-SEV read as UA-40")),
        ("RU", "43", Codes("RU", "UA-43", "vendor code RU-43 read as UA-43")),
        ("RU", "KR", Codes("RU", "RU-KR")),  # Karelia, a real code: never an alias
        ("KZ", "ALA", Codes("KZ", "KZ-75", "vendor code KZ-ALA read as KZ-75")),
        ("ZA", "QQ", Codes("ZA", None, "subdivision 'ZA-QQ' is not ISO 3166-2: country only", True)),
        ("XK", None, Codes("XK", None)),
        ("ZZ", "43", Codes(None, None, "country 'ZZ' is not ISO 3166-1: ignored")),
        (None, "43", Codes(None, None)),
        ("", "", Codes(None, None)),
    ],
)
def test_read_codes(country: str | None, subdivision: str | None, expected: Codes) -> None:
    assert read_codes(country, subdivision) == expected
