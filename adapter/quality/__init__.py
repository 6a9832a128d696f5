"""Quality score of a SIP or patientkontrakt: criteria as data (mappings/plan-quality.json).

`criteria.py` holds the rules (small pure predicates on a `Plan`) and parses the criteria file's
content; `score.py` scores a plan against them; `load.py` reads the file (the only I/O).
"""

from adapter.quality.criteria import Criteria, CriteriaError, Criterion, parse_criteria
from adapter.quality.load import CRITERIA_FILE, load_criteria
from adapter.quality.score import PlanQuality, UnmetCriterion, score_plan

__all__ = [
    "CRITERIA_FILE",
    "Criteria",
    "CriteriaError",
    "Criterion",
    "PlanQuality",
    "UnmetCriterion",
    "load_criteria",
    "parse_criteria",
    "score_plan",
]
