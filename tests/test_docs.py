"""The documentation says what the code does: the rule table of docs/architecture.md is checked
against dmp/policy.py (a standing, an action or a rule id added on one side only fails here),
and every reference to a section of a docs/ file names a section that exists."""

from __future__ import annotations

import ast
import re
from inspect import getclosurevars
from pathlib import Path
from types import SimpleNamespace

from dmp import policy
from dmp.policy import DOCUMENT_ACTIONS, RECORD_ACTIONS, RECORD_RULES, Action

ROOT = Path(__file__).resolve().parent.parent
ARCHITECTURE = ROOT / "docs" / "architecture.md"
# The two questions `decide()` answers before its tables (no record to start from).
OWN_RULE_FUNCTIONS = {
    Action.CREATE_RECORD: "_decide_create",
    Action.APPROVE_CREDENTIALS_RESET: "_decide_reset_approval",
}


def _rule_table_section() -> str:
    text = ARCHITECTURE.read_text()
    start = text.index("\n## The rule table")
    end = text.find("\n## ", start + 1)
    return text[start:] if end == -1 else text[start:end]


def _tables() -> list[list[dict[str, str]]]:
    """Every Markdown table of the rule table section, as rows keyed by their header."""
    tables, lines = [], []
    for line in [*_rule_table_section().splitlines(), ""]:
        if line.startswith("|"):
            lines.append([cell.strip() for cell in line.strip().strip("|").split("|")])
            continue
        if lines:
            header, _rule, *rows = lines
            tables.append([dict(zip(header, row, strict=True)) for row in rows])
            lines = []
    return tables


def _table(first_column: str) -> list[dict[str, str]]:
    return next(table for table in _tables() if next(iter(table[0])) == first_column)


def _names(cell: str) -> list[str]:
    """The names written as code in a cell (`holder`, `samu_allowed`…)."""
    return re.findall(r"`([^`]+)`", cell)


def _name(cell: str) -> str:
    names = _names(cell)
    return names[0] if names else ""


def _rule_function(rule) -> str:
    """A rule function of decide()'s tables, written as the code composes it."""
    if rule.__qualname__ == "_standing_rule.<locals>.rule":
        return f"_standing_rule({_rule_function(getclosurevars(rule).nonlocals['check'])})"
    if rule.__qualname__ == "_counter_or.<locals>.rule":
        return f"_counter_or({_rule_function(getclosurevars(rule).nonlocals['other'])})"
    return rule.__name__


def _rule_ids_in_policy() -> set[str]:
    """Every rule id dmp/policy.py can answer with: the first argument of each `_allow()` and
    `_deny()`; the one that passes the action along answers with the action's own name."""
    ids, passed_along = set(), 0
    for node in ast.walk(ast.parse((ROOT / "dmp" / "policy.py").read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("_allow", "_deny"):
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                ids.add(first.value)
            elif isinstance(first, ast.Name) and first.id == "action":
                passed_along += 1
            # Anything else (`access.decision.rule`) repeats a rule id written elsewhere.
    assert passed_along == 1, "one `_allow(action, …)` expected, in _decide_opening"
    ids |= {action for action, rule in RECORD_ACTIONS.items() if _rule_function(rule) == "_opening"}
    return ids


def test_the_rule_table_lists_every_standing_in_order():
    rows = _table("#")
    documented = [
        (row["#"], _name(row["Standing"]), _name(row["rule id"]), _name(row["patient's consent"]),
         _name(row["refusal rule id"]), _name(row["audit mode"]))
        for row in rows
    ]
    in_code = [
        (str(number), rule.standing.name, rule.decision.rule, rule.consent or "",
         rule.refusal.rule if rule.refusal is not None else "", rule.decision.mode)
        for number, rule in enumerate(RECORD_RULES, 1)
    ]
    assert documented == in_code
    assert all(row["stored fact (in force now)"] for row in rows)


def test_the_rule_table_says_what_someone_with_no_standing_is_told():
    """`_no_standing()` asked for each kind of account, in the table's order."""
    nobody = {"user": object(), "professional": None, "counter_agent": None, "is_administrator": False}
    open_record, closed_record = SimpleNamespace(is_open=True), SimpleNamespace(is_open=False)
    cases = [
        ({**nobody, "user": None}, open_record),
        (nobody, closed_record),
        ({**nobody, "professional": object()}, open_record),
        ({**nobody, "counter_agent": object()}, open_record),
        ({**nobody, "is_administrator": True}, open_record),
        (nobody, open_record),
    ]
    answers = [policy._no_standing(SimpleNamespace(**actor), record) for actor, record in cases]
    documented = [(_name(row["Standing"]), _name(row["rule id"]), _name(row["audit mode"])) for row in _table("who")]
    assert documented == [(a.standing.name, a.decision.rule, a.mode) for a in answers]


def test_the_rule_table_names_each_actions_rule_function():
    documented = {(_name(row["action"]), row["table"], _name(row["rule function"])) for row in _table("action")}
    in_code = (
        {(action, "record", _rule_function(rule)) for action, rule in RECORD_ACTIONS.items()}
        | {(action, "document", _rule_function(rule)) for action, rule in DOCUMENT_ACTIONS.items()}
        | {(action, "its own", name) for action, name in OWN_RULE_FUNCTIONS.items()}
    )
    assert all(callable(getattr(policy, name)) for name in OWN_RULE_FUNCTIONS.values())
    assert sorted(documented) == sorted(in_code)
    assert len(_table("action")) == len(documented)  # each action once


def test_every_action_is_in_the_rule_table():
    """An action asked of no table is named with those only written in the log."""
    actions = {value for name, value in vars(Action).items() if name.isupper() and isinstance(value, str)}
    in_table = {_name(row["action"]) for row in _table("action")}
    section = _rule_table_section()
    assert not [action for action in actions - in_table if f"`{action}`" not in section]


def test_the_rule_table_names_every_rule_id_and_no_other():
    documented = {
        name
        for table in _tables()
        for row in table
        for column, cell in row.items()
        if "rule id" in column
        for name in _names(cell)
    }
    assert sorted(documented) == sorted(_rule_ids_in_policy())


# `docs/security.md ("Files that cannot hurt")`, `docs/audit.md "The access ledger"`,
# `(docs/tasks.md, "Notifications")`: a docs file followed by a section's title in quotes.
SECTION_REFERENCE = re.compile(r'docs/([\w-]+\.md)\)?[\s,(]*"([^"\n]+)"')


def test_every_reference_to_a_docs_section_names_one_that_exists():
    files = [*ROOT.glob("*.md"), *ROOT.glob("docs/*.md"), *ROOT.glob("requirements*.txt")]
    for package in ("dmp", "portal_patient", "portal_pro", "social_workers", "tests", "templates"):
        files += [path for path in (ROOT / package).rglob("*") if path.suffix in (".py", ".html", ".txt")]
    missing = []
    for path in files:
        for name, title in SECTION_REFERENCE.findall(path.read_text()):
            target = ROOT / "docs" / name
            headings = re.findall(r"^#+\s+(.+?)\s*$", target.read_text(), re.M) if target.exists() else []
            # "1. Install" may be named with or without its number.
            if title not in headings + [re.sub(r"^\d+\.\s+", "", heading) for heading in headings]:
                missing.append(f"{path.relative_to(ROOT)}: docs/{name} \"{title}\"")
    assert missing == []
