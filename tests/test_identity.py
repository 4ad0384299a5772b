"""Identity numbers: the NIR with its key (Corsica included) and the RPPS with its Luhn digit."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from dmp.models.people import rpps_with_key, validate_rpps
from dmp.models.record import new_provisional_id, nir_key, validate_nir


def _with_key(nir13: str) -> str:
    return f"{nir13}{nir_key(nir13):02d}"


@pytest.mark.parametrize(
    "nir",
    [
        "255081416802538",  # the classic published example
        _with_key("1840375116005"),
        _with_key("18512" + "2A" + "004123"),  # born in Corse-du-Sud
        _with_key("28512" + "2B" + "050321"),  # born in Haute-Corse
        "2 55 08 14 168 025 38",  # spaces are accepted
    ],
)
def test_valid_nir_is_accepted(nir):
    validate_nir(nir)


@pytest.mark.parametrize(
    ("nir", "code"),
    [
        ("255081416802539", "nir_key"),  # wrong key
        (_with_key("18512" + "2A" + "004123")[:13] + "00", "nir_key"),
        ("25508141680253", "nir_format"),  # too short
        ("955081416802538", "nir_format"),  # impossible sex digit
        ("2550814168025AB", "nir_format"),
        ("", "nir_format"),
    ],
)
def test_invalid_nir_is_refused_with_a_clear_reason(nir, code):
    with pytest.raises(ValidationError) as error:
        validate_nir(nir)
    assert error.value.code == code


def test_corsica_keys_differ_from_the_numeric_department():
    # 2A is computed as 19 and 2B as 18: a key computed on "20" must not pass.
    base = "18512" + "2A" + "004123"
    wrong = f"{base}{97 - int('1851220004123') % 97:02d}"
    assert wrong != _with_key(base)
    with pytest.raises(ValidationError):
        validate_nir(wrong)


def test_rpps_luhn_check():
    rpps = rpps_with_key("1000000001")
    validate_rpps(rpps)
    with pytest.raises(ValidationError):
        validate_rpps(rpps[:-1] + str((int(rpps[-1]) + 1) % 10))
    with pytest.raises(ValidationError):
        validate_rpps("12345")


def test_provisional_ids_are_readable_and_distinct():
    ids = {new_provisional_id() for _ in range(500)}
    assert len(ids) == 500
    assert all(i.startswith("P") and len(i) == 12 and not set(i) & set("0O1IS5B8") for i in ids)
