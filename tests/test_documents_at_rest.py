"""Nothing of a document's text or title in clear at rest (a database dump, a backup, the file
store), while the full-text search keeps working through the blind index: accents and case
ignored, French plurals, words being typed, titles — and never beyond the policy's scope."""

from __future__ import annotations

import importlib
import io
import os
import shutil
import subprocess  # pg_dump: fixed arguments, no shell
from datetime import date

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import FieldError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from dmp.models import Document, DocumentSearchTerm, DocumentType, ReimbursementLine
from dmp.policy import Actor
from dmp.search_index import document_terms, keyed_terms, normalised_words, query_terms
from dmp.services import (
    blood_group_set,
    document_add,
    document_deposit,
    document_visibility_set,
    organ_donation_state,
    personal_notes_set,
    self_declared_item_add,
    synthesis_write,
    vaccination_add,
)
from dmp.services.synthesis import Problem
from tests.personas import titled
from tests.sample_files import text_pdf

# A word that exists nowhere else, with an accent, in the text of the documents (never typed
# in a title) and one in a title only.
TEXT_MARKER = "Zorglubérine"
TITLE_MARKER = "Qwyxtrophie"
# In the medical synthesis, the personal notes, a self-declared allergy, a vaccination, a
# dispensed medicine and a break-glass justification.
OTHER_MARKERS = ("Plixodermite", "Vrombatose", "Kradolactine", "Zyvaxorix", "Quembralol", "firemen")


def _forms(word: str) -> set[str]:
    folded = normalised_words(word)[0]
    return {word, word.casefold(), word.upper(), folded, folded.upper()}


def _pro_adds(world, text: str, title: str, *, pro=None, record=None, doc_type=DocumentType.LAB_REPORT) -> Document:
    return document_add(actor=Actor((pro or world.dr_house).user), record=record or world.record,
                        content=text_pdf(text), doc_type=doc_type, title=title, act_date=date(2025, 11, 4))


def _search(client, record, text: str, portal: str = "portal_patient") -> set[str]:
    """The titles the portal's list shows after searching `text` (POSTed, kept in the session)."""
    url = reverse(f"{portal}:documents", args=[record.pk])
    assert client.post(url, {"text": text}).status_code == 302
    page = client.get(url).content.decode()
    return {title for title in _all_titles(record) if f">{title}</a>" in page}


def _all_titles(record) -> set[str]:
    return {document.title for document in record.documents.all()}


# -- a dump of the database and the file store ---------------------------------------------


def _pg_dump() -> bytes:
    db = connection.settings_dict
    pg_dump = shutil.which("pg_dump") or "/usr/bin/pg_dump"
    command = [pg_dump, "--no-owner", "--no-privileges", "--dbname", db["NAME"]]
    if db.get("HOST"):
        command += ["--host", db["HOST"]]
    if db.get("PORT"):
        command += ["--port", str(db["PORT"])]
    if db.get("USER"):
        command += ["--username", db["USER"]]
    environment = {**os.environ, "PGPASSWORD": db.get("PASSWORD") or ""}
    result = subprocess.run(command, capture_output=True, env=environment, timeout=120, check=False)  # noqa: S603
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout


def _found_in(blob: bytes, words: set[str]) -> set[str]:
    """Which of `words` `blob` holds, in UTF-8 or Latin-1 (a PDF's text is Latin-1), any case."""
    lowered = blob.lower()
    found = set()
    for word in words:
        for encoding in ("utf-8", "latin-1"):
            if word.lower().encode(encoding) in lowered:
                found.add(word)
    return found


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="pg_dump: PostgreSQL only (CI runs on it)")
def test_a_dump_of_the_database_and_the_file_store_holds_no_word_of_a_document(client, world):
    """Documents come in every way (a professional's drop, the patient's upload, a counter
    deposit), one hidden like a psychiatric report; they are committed, searched (the search
    words are kept in the session), then the whole database is dumped and every stored file
    read: neither the text marker nor the title marker appears, in any case, with or without
    accents — yet the search finds the documents by them. Nor do the words of the medical
    synthesis, the personal notes, a self-declared allergy, a vaccination, a dispensed medicine
    (nor its CIP13 code) or a break-glass justification."""
    client.force_login(world.dr_house.user)
    response = client.post(reverse("portal_pro:documents_add", args=[world.record.pk]), {
        "files": [SimpleUploadedFile("compte_rendu.pdf", text_pdf(f"Traitement par {TEXT_MARKER} 20 mg"))],
    })
    assert response.status_code == 302
    psychiatric = _pro_adds(world, f"Suivi psychiatrique, {TEXT_MARKER} arrete", f"Lettre {TITLE_MARKER}",
                            doc_type=DocumentType.CONSULTATION_REPORT)
    document_visibility_set(actor=Actor(world.alice), document=psychiatric, hidden=True)
    document_deposit(actor=Actor(world.agent.user), record=world.record,
                     content=text_pdf(f"Ordonnance {TEXT_MARKER}"), doc_type=DocumentType.MEDICATION_PRESCRIPTION,
                     title="Ordonnance scannee", act_date=date(2025, 1, 2))
    patient = client.__class__(headers={"Accept-Language": "en"})
    patient.force_login(world.alice)
    response = patient.post(reverse("portal_patient:documents_add", args=[world.record.pk]), {
        "doc_type": DocumentType.PATIENT_DOCUMENT, "act_date": "2025-06-01", "title": f"Note {TITLE_MARKER}",
        "files": [SimpleUploadedFile("note.pdf", text_pdf(f"Mes questions sur la {TEXT_MARKER}"))],
    })
    assert response.status_code == 302
    assert len(_search(patient, world.record, "zorgluberine")) == 4  # found, accents dropped
    assert _search(patient, world.record, TITLE_MARKER.lower()) == {f"Lettre {TITLE_MARKER}", f"Note {TITLE_MARKER}"}
    assert len(_search(client, world.record, TEXT_MARKER.upper(), "portal_pro")) == 4  # the médecin traitant

    synthesis_write(actor=Actor(world.dr_house.user), record=world.record, allergies=f"{OTHER_MARKERS[0]} severe",
                    problems=[Problem("L30.9", f"{OTHER_MARKERS[0]} chronique")])
    personal_notes_set(actor=Actor(world.alice), record=world.record, notes=f"Demander pour la {OTHER_MARKERS[1]}")
    self_declared_item_add(actor=Actor(world.alice), record=world.record, kind="allergy",
                           label=f"Allergie a la {OTHER_MARKERS[2]}")
    vaccination_add(actor=Actor(world.alice), record=world.record, vaccine=OTHER_MARKERS[3], on=date(2020, 5, 1))
    ReimbursementLine.objects.create(record=world.record, date=date(2025, 3, 1), kind="medicine", code="3400912345678",
                                     label=f"{OTHER_MARKERS[4]} 5 mg", amount="3.20", provider="Pharmacie du Nord")
    # The world's break-glass access was justified "Unconscious, brought by firemen".

    markers = _forms(TEXT_MARKER) | _forms(TITLE_MARKER) | set().union(*map(_forms, OTHER_MARKERS)) | {
        "3400912345678"}
    dump = _pg_dump()
    assert b"dmp_documentsearchterm" in dump and b"COPY public.dmp_document " in dump  # the dump has the tables
    assert _found_in(dump, markers) == set()
    files = [path for path in django_settings.MEDIA_ROOT.rglob("*") if path.is_file()]
    assert len(files) >= 4  # the documents and their thumbnails (when pdftoppm is there)
    for path in files:
        assert _found_in(path.read_bytes(), markers) == set(), path.name


@pytest.mark.django_db
def test_title_and_text_columns_hold_tokens_and_the_index_holds_hashes_only(world):
    document = _pro_adds(world, f"Traitement par {TEXT_MARKER}", f"Lettre {TITLE_MARKER}")
    with connection.cursor() as cursor:
        cursor.execute("SELECT title, extracted_text FROM dmp_document WHERE id = %s", [document.pk])
        stored_title, stored_text = cursor.fetchone()
    assert TITLE_MARKER not in stored_title and TEXT_MARKER not in stored_text
    assert stored_title.startswith("gAAAA") and stored_text.startswith("gAAAA")  # Fernet tokens
    document.refresh_from_db()
    assert document.title == f"Lettre {TITLE_MARKER}" and TEXT_MARKER in document.extracted_text
    terms = set(DocumentSearchTerm.objects.filter(document=document).values_list("term", flat=True))
    assert terms == keyed_terms(world.record.pk, document_terms(document.title, document.extracted_text))
    assert all(isinstance(term, int) and -(2**63) <= term < 2**63 for term in terms)


@pytest.mark.django_db
def test_the_blood_group_and_the_organ_donation_choice_are_tokens_too(world):
    blood_group_set(actor=Actor(world.alice), record=world.record, blood_group="AB-")
    organ_donation_state(actor=Actor(world.alice), record=world.record, statement="opposed")
    blood_group, organ_donation = _raw(
        "SELECT blood_group, organ_donation FROM dmp_personalprofile WHERE record_id = %s", world.record.pk)
    assert blood_group.startswith("gAAAA") and organ_donation.startswith("gAAAA")
    profile = world.record.profile
    profile.refresh_from_db()
    assert (profile.blood_group, profile.organ_donation) == ("AB-", "opposed")
    assert profile.get_blood_group_display() == "AB−"


@pytest.mark.django_db
def test_the_database_cannot_be_asked_to_compare_an_encrypted_column(world):
    """A token differs each time the same text is encrypted: a lookup would silently match
    nothing, so it is refused loudly. "Has no text yet" still works."""
    for lookup in ({"title": "consultation"}, {"title__in": ["consultation"]}, {"title__icontains": "cons"},
                   {"extracted_text__startswith": "a"}):
        with pytest.raises(FieldError):
            list(Document.objects.filter(**lookup))
    assert Document.objects.filter(record=world.record, extracted_text="").count() == world.record.documents.count()


@pytest.mark.django_db
def test_the_migration_encrypts_what_was_stored_in_clear_and_builds_the_index(client, world):
    """The data migration's two directions, on rows written before it (clear) and after it."""
    from types import SimpleNamespace

    from django.apps import apps

    migration = importlib.import_module("dmp.migrations.0009_document_text_at_rest")
    document = _pro_adds(world, "Holter rythmique", "Holter ECG")
    synthesis_write(actor=Actor(world.dr_house.user), record=world.record, allergies="Iode",
                    problems=[Problem("I10", "Hypertension")])
    editor = SimpleNamespace(connection=connection)

    migration.decrypt(apps, editor)  # back to the clear columns of before
    DocumentSearchTerm.objects.all().delete()
    assert _raw("SELECT title, extracted_text FROM dmp_document WHERE id = %s", document.pk) == (
        "Holter ECG", "Holter rythmique")
    assert _raw("SELECT allergies FROM dmp_synthesis WHERE record_id = %s", world.record.pk) == ("Iode",)
    assert _raw("SELECT justification FROM dmp_careauthorisation WHERE justification LIKE %s", "%firemen") == (
        "Unconscious, brought by firemen",)

    migration.encrypt_and_index(apps, editor)
    title, text = _raw("SELECT title, extracted_text FROM dmp_document WHERE id = %s", document.pk)
    assert title.startswith("gAAAA") and text.startswith("gAAAA")
    assert _raw("SELECT allergies FROM dmp_synthesis WHERE record_id = %s", world.record.pk)[0].startswith("gAAAA")
    document.refresh_from_db()
    assert (document.title, document.extracted_text) == ("Holter ECG", "Holter rythmique")
    assert world.record.syntheses.get().allergies == "Iode"
    client.force_login(world.alice)
    assert _search(client, world.record, "rythmique") == {"Holter ECG"}
    assert _search(client, world.record, "consultation") == {"consultation"}  # every document indexed


def _raw(sql: str, *params) -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


@pytest.mark.django_db
def test_the_search_words_kept_in_the_session_row_are_encrypted(client, world):
    """Sessions live in the database: the words searched (medical) are kept there as a token."""
    from django.contrib.sessions.models import Session

    # A word long enough never to turn up by chance in base64 ciphertext ("vih" did).
    _pro_adds(world, "Serologie toxoplasmose negative", "Serologie")
    for user, portal in ((world.alice, "portal_patient"), (world.dr_house.user, "portal_pro")):
        client.force_login(user)
        assert _search(client, world.record, "serologie toxoplasmose", portal) == {"Serologie"}
        row = Session.objects.get(session_key=client.session.session_key)
        assert "toxoplasmose" not in str(row.get_decoded()).lower()
        assert "toxoplasmose" not in row.session_data.lower()


# -- search through the blind index --------------------------------------------------------


@pytest.mark.django_db
def test_search_ignores_accents_both_ways_and_case(client, world):
    _pro_adds(world, "Échographie abdominale sans particularité", "Echo abdomen", doc_type=DocumentType.IMAGING_REPORT)
    _pro_adds(world, "echographie renale, controle HbA1c", "Echo reins", doc_type=DocumentType.IMAGING_REPORT)
    client.force_login(world.alice)
    assert _search(client, world.record, "echographie") == {"Echo abdomen", "Echo reins"}
    assert _search(client, world.record, "Échographie") == {"Echo abdomen", "Echo reins"}
    assert _search(client, world.record, "ÉCHOGRAPHIE RÉNALE") == {"Echo reins"}
    assert _search(client, world.record, "particularite") == {"Echo abdomen"}
    assert _search(client, world.record, "hba1c") == {"Echo reins"}
    assert _search(client, world.record, "contrôlé") == {"Echo reins"}


@pytest.mark.django_db
def test_search_finds_a_word_being_typed_and_singular_or_plural(client, world):
    _pro_adds(world, "Analyses sanguines: hemoglobine glyquee", "Bilan")
    _pro_adds(world, "Une analyse d'urine", "ECBU")
    _pro_adds(world, "Prescription de paracetamol", "Ordonnance", doc_type=DocumentType.MEDICATION_PRESCRIPTION)
    client.force_login(world.dr_house.user)
    assert _search(client, world.record, "hémoglo", "portal_pro") == {"Bilan"}  # a word begun, accent added
    assert _search(client, world.record, "parac", "portal_pro") == {"Ordonnance"}  # a drug name begun
    assert _search(client, world.record, "analyse", "portal_pro") == {"Bilan", "ECBU"}  # singular finds plural
    assert _search(client, world.record, "analyses", "portal_pro") == {"Bilan", "ECBU"}  # and the reverse
    assert _search(client, world.record, "sanguin", "portal_pro") == {"Bilan"}
    assert _search(client, world.record, "analyses urine", "portal_pro") == {"ECBU"}  # every word must match
    assert _search(client, world.record, "pa", "portal_pro") == set()  # two letters: a whole word only
    assert _search(client, world.record, "de la", "portal_pro") == set()  # stop words only: nothing


@pytest.mark.django_db
def test_search_finds_a_word_that_is_only_in_the_title(client, world):
    _pro_adds(world, "TSH 2,1 mUI/L", "Bilan thyroïdien")
    client.force_login(world.alice)
    assert _search(client, world.record, "thyroidien") == {"Bilan thyroïdien"}
    assert _search(client, world.record, "consultation") == {"consultation"}  # a fixture document, title only


@pytest.mark.django_db
def test_a_term_of_another_records_document_never_finds_this_one(client, world):
    """The same word hashes differently in every record: the hashes of one record's index say
    nothing of, and find nothing in, another's."""
    alices = _pro_adds(world, "Scintigraphie osseuse", "Scinti Alice")
    leos = _pro_adds(world, "Scintigraphie osseuse", "Scinti Leo", record=world.leo_record)
    alice_terms = set(alices.search_terms.values_list("term", flat=True))
    leo_terms = set(leos.search_terms.values_list("term", flat=True))
    assert alice_terms and leo_terms and not alice_terms & leo_terms
    _pro_adds(world, "Densitometrie", "Densito Alice")
    client.force_login(world.mother)
    assert _search(client, world.leo_record, "scintigraphie") == {"Scinti Leo"}
    assert _search(client, world.leo_record, "densitometrie") == set()
    # Alice's hash of the word copied into Léo's document's index still finds nothing there.
    [alice_word] = keyed_terms(world.record.pk, {"p:densitomet"})
    DocumentSearchTerm.objects.create(document=leos, term=alice_word)
    assert _search(client, world.leo_record, "densitometrie") == set()


@pytest.mark.django_db
def test_search_never_finds_what_the_policy_keeps_from_the_reader(client, world):
    _pro_adds(world, "Depistage confidentiel chlamydia", "Depistage", record=world.leo_record,
              doc_type=DocumentType.SCREENING_REPORT)
    secret = _pro_adds(world, "Contraception d'urgence, chlamydia", "Consultation confidentielle",
                       record=world.leo_record)
    Document.objects.filter(pk=secret.pk).update(hidden_from_representatives=True)
    withheld = _pro_adds(world, "Biopsie: carcinome", "Résultat biopsie", pro=world.dr_grant)
    Document.objects.filter(pk=withheld.pk).update(withheld_from_patient_until="2999-01-01T00:00:00Z")
    hidden = _pro_adds(world, "Suivi addictologie", "Suivi", doc_type=DocumentType.CONSULTATION_REPORT)
    document_visibility_set(actor=Actor(world.alice), document=hidden, hidden=True)

    client.force_login(world.mother)  # a representative: not what is hidden from representatives
    assert _search(client, world.leo_record, "chlamydia") == {"Depistage"}
    client.force_login(world.alice)  # the patient: not a result before it is announced
    assert _search(client, world.record, "carcinome") == set()
    assert _search(client, world.record, "addictologie") == {"Suivi"}
    client.force_login(world.dr_grant.user)  # a GP with a care authorisation: not a hidden document
    assert _search(client, world.record, "addictologie", "portal_pro") == set()
    assert _search(client, world.record, "carcinome", "portal_pro") == {"Résultat biopsie"}  # his own result
    client.force_login(world.dr_house.user)  # the author (and médecin traitant) still sees it
    assert _search(client, world.record, "addictologie", "portal_pro") == {"Suivi"}
    client.force_login(world.stranger.user)  # no standing: the list itself is refused
    assert client.post(reverse("portal_pro:documents", args=[world.record.pk]), {"text": "addicto"}).status_code == 404


def test_normalisation_folds_accents_ligatures_and_case_and_drops_stop_words():
    assert normalised_words("Œdème, ÉCHOGRAPHIE de l'Hôpital; HbA1c=7,2") == [
        "oedeme", "echographie", "de", "l", "hopital", "hba1c", "7", "2"]
    assert query_terms("de la") == []
    [echo] = query_terms("Échographies")
    assert echo == {"w:echograph", "p:echographi"}
    assert "p:oed" in document_terms("œdème") and "p:ede" not in document_terms("œdème")


# -- keys: rotation and maintenance ----------------------------------------------------------


@pytest.mark.django_db
def test_key_rotation_keeps_finding_then_reindexes_and_reencrypts_under_the_new_keys(client, world, settings):
    from cryptography.fernet import Fernet

    old_index_key = settings.SEARCH_INDEX_KEYS[0]
    _pro_adds(world, "Coronarographie normale", "Coro")
    synthesis_write(actor=Actor(world.dr_house.user), record=world.record, allergies="Latex",
                    problems=[Problem("I10", "Hypertension")])
    new_index_key, new_fernet_key = "n" * 40, Fernet.generate_key().decode()
    settings.SEARCH_INDEX_KEYS = [new_index_key, old_index_key]
    settings.DOCUMENT_ENCRYPTION_KEYS = [new_fernet_key, *settings.DOCUMENT_ENCRYPTION_KEYS]
    client.force_login(world.alice)
    assert _search(client, world.record, "coronarographie") == {"Coro"}  # indexed under the old key

    call_command("reindex_documents", stdout=io.StringIO())
    settings.SEARCH_INDEX_KEYS = [new_index_key]
    settings.DOCUMENT_ENCRYPTION_KEYS = [new_fernet_key]  # the old Fernet key is no longer needed
    assert _search(client, world.record, "coronarographie") == {"Coro"}
    [coro] = titled(world.record.documents.all(), "Coro")
    assert "Coronarographie" in coro.extracted_text
    # Every other encrypted column was written again too: readable with the new key alone.
    synthesis = world.record.syntheses.get()
    assert synthesis.allergies == "Latex" and synthesis.problems.get().label == "Hypertension"
    assert world.record.care_authorisations.filter(kind="break_glass").first().justification


@pytest.mark.django_db
def test_backfill_indexes_documents_that_have_no_index(client, world):
    document = _pro_adds(world, "Spirometrie restrictive", "EFR")
    DocumentSearchTerm.objects.filter(document=document).delete()
    client.force_login(world.alice)
    assert _search(client, world.record, "spirometrie") == set()
    call_command("backfill_documents", stdout=io.StringIO(), stderr=io.StringIO())
    assert _search(client, world.record, "spirometrie") == {"EFR"}
    assert _search(client, world.record, "imaging") == {"imaging", "hidden imaging"}  # the fixtures' titles too
