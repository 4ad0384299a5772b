"""Before an onboarding at a counter: does the person already have a record? (issue 6)"""

from __future__ import annotations

import logging
import unicodedata
from datetime import date

from ..models import Record
from ..models.record import normalise_nir
from ..policy import Action, Actor, decide

security_log = logging.getLogger("dmp.security")


def _folded(value: str) -> str:
    """Accents, case and separators ignored: "Élodie-Marie" and "ELODIE MARIE" are the same."""
    text = unicodedata.normalize("NFKD", value or "")
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    return " ".join(text.replace("-", " ").replace("'", " ").split())


def onboarding_duplicate(actor: Actor, *, nir: str, family_name: str, given_names: str, birth_date: date) -> str:
    """"nir" (same social-security number: not to be created), "identity" (same names and birth
    date: the agent confirms it is someone else) or "". Says nothing else about any record; the
    answer is one `dmp.security` line with ids only. Only for those who may create a record."""
    if not decide(actor, Action.CREATE_RECORD).allowed:
        return ""
    answer = ""
    nir = normalise_nir(nir)
    if nir and Record.objects.filter(nir=nir).exists():
        answer = "nir"
    else:
        wanted = (_folded(family_name), _folded(given_names))
        same_day = Record.objects.filter(birth_date=birth_date).only("family_name", "given_names")
        if any((_folded(r.family_name), _folded(r.given_names)) == wanted for r in same_day):
            answer = "identity"
    security_log.info("onboarding duplicate check by user %s: %s", actor.user.pk, answer or "none")
    return answer
