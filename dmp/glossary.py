"""The words of the record, explained: the page a patient, a relative or a counter agent opens
when "médecin traitant" or "NIR" means nothing to them (DOMAIN.md §7: explain the terms that have
no equivalent). Each language's term and explanation are its glossary's (docs/glossary/<lang>.md);
tests/test_glossary_page.py holds the catalogues to the glossaries, so the two cannot drift."""

from __future__ import annotations

from django.utils.translation import pgettext_lazy

# (key, term, explanation), in the glossaries' order.
WORDS = [
    ("dmp", pgettext_lazy("glossary term", "shared medical record (DMP)"),
     pgettext_lazy("glossary", "Your health record, online, shared by the doctors who treat you.")),
    ("record", pgettext_lazy("glossary term", "record"),
     pgettext_lazy("glossary", "Your shared medical record (DMP).")),
    ("document", pgettext_lazy("glossary term", "document"),
     pgettext_lazy("glossary", "A file in your record: a report, a prescription, a test result.")),
    ("summary", pgettext_lazy("glossary term", "summary"),
     pgettext_lazy("glossary", "One page about your health that a doctor keeps up to date.")),
    ("attending_doctor", pgettext_lazy("glossary term", "attending doctor"),
     pgettext_lazy("glossary", "The GP you declared to the health insurance. They "
                   "coordinate your care and see your whole record.")),
    ("professional", pgettext_lazy("glossary term", "health professional"),
     pgettext_lazy("glossary", "A doctor, nurse, pharmacist or other carer registered in France.")),
    ("trusted_person", pgettext_lazy("glossary term", "trusted person"),
     pgettext_lazy("glossary", "Someone you choose. Doctors ask them what you "
                   "would want if you cannot speak for yourself.")),
    ("advance_directives", pgettext_lazy("glossary term", "advance directives"),
     pgettext_lazy("glossary", "What you want, or refuse, as care at the end of your "
                   "life, written now in case you cannot say it then.")),
    ("emergency_access", pgettext_lazy("glossary term", "emergency access"),
     pgettext_lazy("glossary", "In an emergency, a doctor may open your record without "
                   "your permission. It is always recorded and you are told.")),
    ("legal_representative", pgettext_lazy("glossary term", "legal representative"),
     pgettext_lazy("glossary", "A parent or a guardian who acts for a child or a protected adult.")),
    ("counter", pgettext_lazy("glossary term", "counter"),
     pgettext_lazy("glossary", "The desk of an organisation (health insurance, hospital, "
                   "association) where someone helps you in person.")),
    ("counter_agent", pgettext_lazy("glossary term", "counter agent"),
     pgettext_lazy("glossary", "The person who helps you at that desk.")),
    ("social_worker", pgettext_lazy("glossary term", "social worker"),
     pgettext_lazy("glossary", "A person who helps you with your rights and paperwork.")),
    ("hide", pgettext_lazy("glossary term", "hide (a document)"),
     pgettext_lazy("glossary", "Make a document invisible to professionals, or to a representative.")),
    ("block", pgettext_lazy("glossary term", "block (a professional)"),
     pgettext_lazy("glossary", "Forbid one professional to open your record.")),
    ("access_history", pgettext_lazy("glossary term", "access history"),
     pgettext_lazy("glossary", "The list of everyone who opened or changed your record, and when.")),
    ("login_code", pgettext_lazy("glossary term", "login code"),
     pgettext_lazy("glossary", "The short code we send you by SMS or e-mail each "
                   "time you log in. Never give it to anyone.")),
    ("second_factor", pgettext_lazy("glossary term", "second factor"),
     pgettext_lazy("glossary", "A second proof that it is you, after "
                   "the password: a code, an app or a key.")),
    ("temporary_password", pgettext_lazy("glossary term", "temporary password"),
     pgettext_lazy("glossary", "The password printed for you at the counter. "
                   "You replace it at your first login.")),
    ("credentials_sheet", pgettext_lazy("glossary term", "credentials sheet"),
     pgettext_lazy("glossary", "The printed sheet with your identifier and your temporary password.")),
    ("consent", pgettext_lazy("glossary term", "consent"),
     pgettext_lazy("glossary", "Your agreement. It is asked before your record is created.")),
    ("nir", pgettext_lazy("glossary term", "social security number (NIR)"),
     pgettext_lazy("glossary", "Your French social security number: 13 digits and a "
                   "2-digit key. Your record can be created without it.")),
    ("carte_vitale", pgettext_lazy("glossary term", "Carte Vitale"),
     pgettext_lazy("glossary", "The green card of the French health insurance. You may "
                   "not have one yet: your record can be created without it.")),
    ("health_insurance", pgettext_lazy("glossary term", "health insurance (Assurance Maladie)"),
     pgettext_lazy("glossary", "The French public health insurance. The CPAM is its office near you.")),
    ("reimbursements", pgettext_lazy("glossary term", "reimbursements"),
     pgettext_lazy("glossary", "What the health insurance paid back for your care.")),
    ("vaccinations", pgettext_lazy("glossary term", "vaccinations"),
     pgettext_lazy("glossary", "The vaccines you received.")),
    ("allergies", pgettext_lazy("glossary term", "allergies"),
     pgettext_lazy("glossary", "What your body reacts badly to: a medicine, a food, a material.")),
    ("medical_history", pgettext_lazy("glossary term", "medical history"),
     pgettext_lazy("glossary", "Your past illnesses and operations.")),
    ("treatments", pgettext_lazy("glossary term", "treatments"),
     pgettext_lazy("glossary", "The medicines you take now.")),
    ("organ_donation", pgettext_lazy("glossary term", "organ donation"),
     pgettext_lazy("glossary", "Whether you agree to give your organs after your death. "
                   "In France everyone is a donor unless they refuse.")),
    ("blood_group", pgettext_lazy("glossary term", "blood group"),
     pgettext_lazy("glossary", "Your blood type: A, B, AB or O, positive or negative.")),
    ("ips", pgettext_lazy("glossary term", "International Patient Summary"),
     pgettext_lazy("glossary", "A short summary of your health, in a standard "
                   "form that a doctor in another country can read.")),
    ("export", pgettext_lazy("glossary term", "copy of the record"),
     pgettext_lazy("glossary", "A ZIP file with all your documents, to download and keep.")),
    ("close_record", pgettext_lazy("glossary term", "close the record"),
     pgettext_lazy("glossary", "Stop your DMP. The documents are kept for the time the law requires.")),
    ("notification", pgettext_lazy("glossary term", "notification"),
     pgettext_lazy("glossary", "A message by SMS or e-mail that tells "
                   "you something happened in your record.")),
    ("identity_document", pgettext_lazy("glossary term", "identity document"),
     pgettext_lazy("glossary", "A passport, a residence permit, an asylum-seeker certificate…")),
]
