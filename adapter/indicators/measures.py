"""The indicators' Measure resources (profiles/Measure-<indicator>.json): the one place for their
definitions and Swedish titles, which the tables and charts show."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from adapter.canonical import IndicatorCode, measure_url
from adapter.indicators.compute import Scoring


class MeasureError(ValueError):
    """A Measure file is missing or not what the indicator needs (Swedish message)."""


@dataclass(frozen=True, slots=True)
class MeasureInfo:
    indicator: IndicatorCode
    url: str
    title: str  # Swedish
    short_title: str  # the indicator code's display (CodeSystem indicator)
    scoring: Scoring
    resource: dict[str, Any]


def measure_path(indicator: IndicatorCode, profiles_dir: Path) -> Path:
    return profiles_dir / f"Measure-{indicator.value}.json"


def _load(indicator: IndicatorCode, profiles_dir: Path) -> MeasureInfo:
    path = measure_path(indicator, profiles_dir)
    try:
        resource = json.loads(path.read_text(encoding="utf-8"))
        scoring = Scoring(resource["scoring"]["coding"][0]["code"])
        title = str(resource["title"])
        short = str(resource["group"][0]["code"]["coding"][0]["display"])
    except OSError as exc:
        raise MeasureError(f"{path}: kan inte läsa filen ({exc.strerror})") from exc
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise MeasureError(f"{path}: inte en giltig Measure för {indicator.value} ({exc})") from exc
    if resource.get("url") != measure_url(indicator.value):
        raise MeasureError(f"{path}: url ska vara {measure_url(indicator.value)}")
    return MeasureInfo(indicator, resource["url"], title, short, scoring, resource)


@cache
def load_measures(profiles_dir: Path) -> dict[IndicatorCode, MeasureInfo]:
    """Every indicator's Measure in `profiles_dir`, in the order of IndicatorCode."""
    return {code: _load(code, profiles_dir) for code in IndicatorCode}


# The titles the tables, charts and pages show, from the Measures in `profiles_dir` (read once).
def title(indicator: IndicatorCode, profiles_dir: Path) -> str:
    return load_measures(profiles_dir)[indicator].title


def short_title(indicator: IndicatorCode, profiles_dir: Path) -> str:
    return load_measures(profiles_dir)[indicator].short_title
