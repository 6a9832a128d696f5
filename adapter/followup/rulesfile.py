"""The rule set read from its file (I/O): `mappings/rules.json`, or the settings' mappings folder's.

`adapter.followup.rules` stays pure (a RuleSet in, decisions out); this is where a RuleSet is read.
"""

from __future__ import annotations

from pathlib import Path

from adapter.followup.params import RULES_FILE, load_rule_params
from adapter.followup.rules import RuleSet
from adapter.settings import Settings


def load_rules(path: Path) -> RuleSet:
    """The rules of a rules file (RuleParamsError naming the file and field if it is wrong)."""
    return RuleSet.from_params(load_rule_params(path))


def rules_of(settings: Settings) -> RuleSet:
    """The rules of `<mappings_dir>/rules.json` of `settings`."""
    return load_rules(settings.mappings_dir / RULES_FILE)
