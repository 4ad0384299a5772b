"""What matters for this patient: the analyte groups chosen from the problems and treatments,
and every group a rule names is a group of the LOINC table."""

from __future__ import annotations

import re

import pytest

from dmp import fhir, loinc
from dmp.data import rows
from dmp.demo import SYNTHESIS_FIELDS, SYNTHESIS_PROBLEMS
from dmp.results_relevance import RULES, SUBSTANCES, analyte_groups, atc_of


@pytest.mark.parametrize(("problems", "treatments", "expected"), [
    (["E11.9"], [], ("hba1c",)),
    (["E10"], [], ("hba1c",)),
    (["E14.9"], [], ("hba1c",)),
    ([], ["Metformine 1000 mg : 1 cp x3"], ("hba1c", "creatinine", "egfr")),
    ([], ["RAMIPRIL 5 mg"], ("creatinine", "egfr", "potassium")),
    ([], ["Irbésartan 150 mg"], ("creatinine", "egfr", "potassium")),
    ([], ["Furosémide 40 mg"], ("potassium",)),
    (["N18.3"], [], ("creatinine", "egfr", "potassium")),
    (["E78.0"], [], ("ldl",)),
    ([], ["Rosuvastatine 10 mg le soir"], ("ldl",)),
    ([], ["Fluindione 20 mg selon INR"], ("inr",)),
    ([], ["warfarin 5 mg"], ("inr",)),
    ([], ["Levothyrox 75 µg"], ("tsh",)),
    (["E03.9"], [], ("tsh",)),
    (["E05"], [], ("tsh",)),
    (["J45", "M54.5"], ["Salbutamol si besoin", "Paracétamol 1 g"], ()),
    ([], [], ()),
])
def test_the_groups_follow_the_problems_and_treatments(problems, treatments, expected):
    assert analyte_groups(problems=problems, treatments=treatments) == expected


def test_atc_codes_given_as_codes_count_like_named_substances():
    assert analyte_groups(atc=["c09ca03"]) == analyte_groups(treatments=["valsartan"])
    assert analyte_groups(atc=["B01AA03"]) == ("inr",)


def test_a_combination_names_each_of_its_substances():
    assert atc_of("Valsartan/Hydrochlorothiazide 80 mg/12,5 mg") == ("C09CA03", "C03AA03")
    assert atc_of("Metformine et metformine") == ("A10BA02",)
    assert atc_of("Vitamine D 100 000 UI") == ()


def test_words_that_only_contain_a_substance_name_do_not_match():
    assert atc_of("antimetformine") == () and analyte_groups(problems=["N17.9", "E16"]) == ()


def test_the_demo_patient_sees_hba1c_renal_function_potassium_and_ldl_in_that_order():
    treatments = fhir.treatments(SYNTHESIS_FIELDS["current_treatments"])
    groups = analyte_groups(problems=[p.icd10 for p in SYNTHESIS_PROBLEMS], treatments=treatments)
    assert groups == ("hba1c", "creatinine", "egfr", "potassium", "ldl")


def test_every_group_a_rule_names_is_in_the_loinc_table():
    assert {rule.group for rule in RULES} <= set(loinc.groups())


def test_the_substance_table_names_each_word_once_with_well_formed_atc_codes():
    table = rows(SUBSTANCES)
    words = [word for row in table for word in row["names"].split()]
    assert len(words) == len(set(words)) and all(word == word.lower() for word in words)
    assert all(re.fullmatch(r"[A-Z]\d\d[A-Z]{0,2}(\d\d)?", row["atc"]) for row in table)
