from . import second_factor_required


def account(request) -> dict:
    """What the page header offers a logged-in account: its password, and its second factor
    (recovery codes) for those who have one."""
    user = getattr(request, "user", None)
    return {"has_second_factor_pages": second_factor_required(user)}
