"""Delegated administration: what an operator administers (DOMAIN.md §4, "administration is
delegated per organisation").

An operator is a staff account. Their scope is stored as django-guardian object permissions
(`dmp.administer_organisation` on each organisation they administer) plus, for professionals
without a facility (a liberal GP belongs to no organisation), the model-wide permission
`dmp.administer_unaffiliated`. Both are granted only from the command line
(`manage.py admin_scope`), never from the admin itself, so no operator widens their own scope.

Within their scope an operator sees and changes organisations, counter agents, professionals
and their accounts; nothing else (patients' accounts, other operators) is theirs. Every admin
page asks here: the querysets below filter the lists, `administers()` answers for one object,
and what is outside the scope is a 404, like a missing object.
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import Q, QuerySet
from guardian.shortcuts import get_objects_for_user

from ..models import AdminRequest, CounterAgent, Organisation, Professional, User

ADMINISTER_ORGANISATION = "dmp.administer_organisation"
ADMINISTER_UNAFFILIATED = "dmp.administer_unaffiliated"


def is_operator(user) -> bool:
    """A staff account that may use the admin at all (a superuser only where they are allowed,
    i.e. never in production: see dmp/accounts/backends.py)."""
    if user is None or not user.is_authenticated or not user.is_active or not user.is_staff:
        return False
    return not user.is_superuser or settings.SUPERUSERS_ALLOWED


def _everything(user) -> bool:
    # Development and tests only: production refuses superusers at login and in `check --deploy`.
    return bool(user.is_superuser and settings.SUPERUSERS_ALLOWED)


def organisations_administered_by(user) -> QuerySet[Organisation]:
    if not is_operator(user):
        return Organisation.objects.none()
    if _everything(user):
        return Organisation.objects.all()
    return get_objects_for_user(user, ADMINISTER_ORGANISATION, klass=Organisation, accept_global_perms=False,
                                with_superuser=False)


def administers_unaffiliated(user) -> bool:
    return is_operator(user) and (_everything(user) or user.has_perm(ADMINISTER_UNAFFILIATED))


def _professional_scope(user, prefix: str = "") -> Q:
    """Professionals of the operator's organisations, and those without one if theirs."""
    q = Q(**{f"{prefix}facility__in": organisations_administered_by(user)})
    if administers_unaffiliated(user):
        q |= Q(**{f"{prefix}facility__isnull": True})
    return q


def professionals_administered_by(user) -> QuerySet[Professional]:
    if not is_operator(user):
        return Professional.objects.none()
    return Professional.objects.filter(_professional_scope(user))


def counter_agents_administered_by(user) -> QuerySet[CounterAgent]:
    if not is_operator(user):
        return CounterAgent.objects.none()
    return CounterAgent.objects.filter(organisation__in=organisations_administered_by(user))


def accounts_administered_by(user) -> QuerySet[User]:
    """The accounts of the professionals and counter agents in scope: never a patient's (they
    are managed at a counter, with the person) nor another operator's."""
    if not is_operator(user):
        return User.objects.none()
    return User.objects.filter(
        Q(professional__in=professionals_administered_by(user))
        | Q(counter_agent__in=counter_agents_administered_by(user)),
        is_staff=False, is_superuser=False,
    )


def requests_administered_by(user) -> QuerySet[AdminRequest]:
    """Requests whose subject is in scope: the facility of the professional to create (or none,
    for the unaffiliated), the organisation of the counter agent to create, the account whose
    second factor is to be reset."""
    if not is_operator(user):
        return AdminRequest.objects.none()
    creation = Q(kind=AdminRequest.Kind.CREATE_PROFESSIONAL, facility__in=organisations_administered_by(user))
    if administers_unaffiliated(user):
        creation |= Q(kind=AdminRequest.Kind.CREATE_PROFESSIONAL, facility__isnull=True)
    agent = Q(kind=AdminRequest.Kind.CREATE_COUNTER_AGENT, organisation__in=organisations_administered_by(user))
    reset = Q(kind=AdminRequest.Kind.RESET_SECOND_FACTOR, target_user__in=accounts_administered_by(user))
    return AdminRequest.objects.filter(creation | agent | reset)


def administers(user, obj) -> bool:
    """Whether the operator administers this one object (organisation, professional, counter
    agent, account, request); anything else is nobody's in the admin."""
    if obj is None:
        return is_operator(user)
    querysets = {
        Organisation: organisations_administered_by,
        Professional: professionals_administered_by,
        CounterAgent: counter_agents_administered_by,
        User: accounts_administered_by,
        AdminRequest: requests_administered_by,
    }
    for model, queryset in querysets.items():
        if isinstance(obj, model):
            return obj.pk is not None and queryset(user).filter(pk=obj.pk).exists()
    return False


def facility_in_scope(user, facility: Organisation | None) -> bool:
    """May the operator put a professional in this facility (or in none)?"""
    if facility is None:
        return administers_unaffiliated(user)
    return organisations_administered_by(user).filter(pk=facility.pk).exists()
