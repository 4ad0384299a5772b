"""The LOINC table of the analytes we show: well-formed codes (LOINC's mod-10 check digit), no
duplicate, every group known, French and English names, the sender's text for unknown codes."""

from __future__ import annotations

import pytest

from dmp import loinc
from dmp.data import rows

# Analytes the results screens and the relevance rules need, by group.
NEEDED = {
    "hba1c": {"4548-4", "17856-6"}, "glucose": {"2345-7", "14749-6", "15074-8"},
    "creatinine": {"2160-0", "14682-9"}, "egfr": {"62238-1", "33914-3", "98979-8", "77147-7"},
    "ldl": {"2089-1", "13457-7", "18262-6"}, "hdl": {"2085-9"}, "cholesterol": {"2093-3"},
    "triglycerides": {"2571-8"}, "potassium": {"2823-3", "6298-4"}, "sodium": {"2951-2"},
    "inr": {"6301-6", "34714-6"}, "tsh": {"3016-3", "11580-8"}, "haemoglobin": {"718-7"}, "platelets": {"777-3"},
    "leukocytes": {"6690-2"}, "alt": {"1742-6"}, "ast": {"1920-8"}, "ggt": {"2324-2"}, "crp": {"1988-5"},
    "ferritin": {"2276-4"}, "vitamin_d": {"1989-3"}, "uacr": {"9318-7", "14959-1"}, "psa": {"2857-1"},
}


@pytest.mark.parametrize(("number", "digit"), [("4548", 4), ("2160", 0), ("14682", 9), ("62238", 1), ("718", 7),
                                               ("34714", 6), ("12345", 5)])
def test_the_check_digit_is_loincs_mod_10(number, digit):
    # 12345 → 5 is the worked example of the LOINC Users' Guide.
    assert loinc.check_digit(number) == digit


@pytest.mark.parametrize("code", ["4548-5", "4548", "4548-", "45484", "x4548-4", "2160-0 ", "", "12345678-9"])
def test_a_code_with_a_wrong_check_digit_or_shape_is_not_loinc(code):
    assert not loinc.is_loinc(code)


def test_every_code_of_the_table_is_well_formed_and_listed_once():
    codes = [row["code"] for row in rows(loinc.ANALYTES)]
    assert len(codes) == len(set(codes))
    assert [code for code in codes if not loinc.is_loinc(code)] == []


def test_every_analyte_belongs_to_a_known_group_with_names_and_a_unit():
    groups = loinc.groups()
    for analyte in loinc.analytes().values():
        assert analyte.group in groups, analyte.code
        assert analyte.english and analyte.french and analyte.unit, analyte.code
    assert all(loinc.codes_of(group) for group in groups)  # no group without an analyte


def test_the_table_holds_every_analyte_the_screens_need_in_its_group():
    for group, codes in NEEDED.items():
        assert codes <= set(loinc.codes_of(group)), group
        assert all(loinc.analyte_of(code) == group for code in codes)


def test_the_same_analyte_in_two_units_is_one_group():
    assert loinc.analyte_of("2160-0") == loinc.analyte_of("14682-9") == "creatinine"
    assert (loinc.unit_of("2160-0"), loinc.unit_of("14682-9")) == ("mg/L", "umol/L")
    assert loinc.codes_of("hba1c")[0] == "4548-4"  # the usual code first


def test_names_are_french_for_french_and_english_for_the_other_languages():
    assert loinc.display("14682-9", "fr") == "Créatinine (molaire)"
    assert loinc.display("14682-9", "en") == "Creatinine (molar)"
    assert loinc.display("62238-1", "ru") == "eGFR (CKD-EPI)"
    assert loinc.groups()["egfr"].name("fr") == "DFG estimé"


def test_an_unknown_code_is_shown_with_its_senders_text():
    assert loinc.display("99999-9", "fr", fallback="Fructosamine") == "Fructosamine"
    assert loinc.analyte_of("99999-9") == "" and loinc.codes_of("fructosamine") == () and loinc.unit_of("x") == ""
