"""Unusual for her: a day's figures against the same weekday's usual range, learned from the dog's own history.

Pure logic, no I/O. Figures are cumulative from the day's start to the end of an hour (minutes seen and
lying, barking episodes and zone visits from the event log: :func:`edge.behaviour.diary.figures_until`;
active minutes from the day's analytics), kept per day as ``{"0": {...}, …, "23": {...}}``. The rule:

- the **baseline** of day D at hour h is the figures up to hour h on the last ``BASELINE_DAYS`` (4) days
  before D that fall on D's weekday and have figures (looking back at most ``BASELINE_WEEKS`` weeks);
- **learning**: nothing is judged until the history is ``LEARNING_DAYS`` (7) days old (the first day with
  figures is at least a week before D), nor without at least one same weekday in the baseline;
- a figure is **unusual** when it is outside the baseline's range [lo, hi] by at least the metric's minimum
  absolute difference (:data:`METRICS`) and by half of the range's edge: above when
  ``value >= hi + min_diff`` and ``value >= 1.5 × hi``, below when ``value <= lo - min_diff`` and
  ``value <= 0.5 × lo``;
- each metric and direction is raised at most once a day (the caller keeps what was raised).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

BASELINE_DAYS = 4
BASELINE_WEEKS = 5
LEARNING_DAYS = 7
HIGH_FACTOR, LOW_FACTOR = 1.5, 0.5


@dataclasses.dataclass(frozen=True, slots=True)
class Metric:
    label: str        # what a person calls it
    unit: str         # "min" or "" (a count)
    min_diff: float   # the smallest absolute difference that counts


METRICS: dict[str, Metric] = {
    "seen_minutes": Metric("time seen", "min", 30.0),
    "lying_minutes": Metric("time lying down", "min", 30.0),
    "bark_episodes": Metric("barking episodes", "", 3.0),
    "active_minutes": Metric("active time", "min", 15.0),
    "zone_visits": Metric("zone visits", "", 5.0),
}
RULE = (f"outside the range of the last {BASELINE_DAYS} same weekdays up to the same hour, by at least the "
        f"metric's minimum difference and by half; silent for the first {LEARNING_DAYS} days")


@dataclasses.dataclass(frozen=True, slots=True)
class Finding:
    metric: str
    direction: str            # "more" or "less"
    value: float
    usual: tuple[float, ...]  # the baseline days' values, oldest first
    days: tuple[str, ...]     # the baseline days
    day: str
    hour: int                 # figures up to the end of this hour

    def data(self) -> dict[str, Any]:
        """The ``unusual_activity`` event's data: what, how much, compared with what."""
        metric = METRICS[self.metric]
        weekday = dt.date.fromisoformat(self.day).strftime("%A")
        lo, hi = min(self.usual), max(self.usual)
        unit = f" {metric.unit}" if metric.unit else ""
        usual = f"{_num(lo)}{unit}" if lo == hi else f"{_num(lo)}–{_num(hi)}{unit}"
        return {
            "metric": self.metric, "label": metric.label, "direction": self.direction,
            "value": round(self.value, 1), "unit": metric.unit,
            "usual_min": round(lo, 1), "usual_max": round(hi, 1),
            "usual_mean": round(sum(self.usual) / len(self.usual), 1),
            "weekday": weekday, "compared_days": list(self.days), "until_hour": self.hour,
            "text": f"{self.direction} {metric.label} than usual: {_num(self.value)}{unit} by "
                    f"{(self.hour + 1) % 24:02d}:00, a usual {weekday} has {usual}",
        }


def _num(value: float) -> str:
    return f"{value:.0f}" if abs(value - round(value)) < 0.05 else f"{value:.1f}"


def baseline_days(day: str, known: Iterable[str]) -> list[str]:
    """The last ``BASELINE_DAYS`` days before ``day`` on its weekday that have figures, oldest first."""
    date = dt.date.fromisoformat(day)
    have = set(known)
    out = [d for d in ((date - dt.timedelta(weeks=w)).isoformat() for w in range(1, BASELINE_WEEKS + 1))
           if d in have]
    return sorted(out[:BASELINE_DAYS])


def learning_days_left(day: str, first_day: str | None) -> int:
    """Days until the rule speaks (0: it does); the first week of history is silent."""
    if first_day is None:
        return LEARNING_DAYS
    age = (dt.date.fromisoformat(day) - dt.date.fromisoformat(first_day)).days
    return max(0, LEARNING_DAYS - age)


def judge(day: str, hour: int, today: Mapping[str, float], history: Mapping[str, Mapping[str, Mapping[str, float]]],
          raised: Iterable[tuple[str, str]] = (), first_day: str | None = None) -> list[Finding]:
    """What is unusual in ``today`` (figures up to the end of ``hour``) against ``history`` (day -> hour ->
    figures, earlier days only); ``raised`` holds (metric, direction) already raised today; ``first_day``
    is the first day with figures (default: the earliest in ``history``)."""
    if learning_days_left(day, first_day or min(history, default=None)) > 0:
        return []
    days = [d for d in baseline_days(day, history) if str(hour) in history[d]]
    done = set(raised)
    out: list[Finding] = []
    for name, metric in METRICS.items():
        value = today.get(name)
        pairs = [(d, history[d][str(hour)].get(name)) for d in days]
        usual = [(d, float(v)) for d, v in pairs if isinstance(v, int | float)]
        if not isinstance(value, int | float) or not usual:
            continue
        lo, hi = min(v for _, v in usual), max(v for _, v in usual)
        if value >= hi + metric.min_diff and value >= HIGH_FACTOR * hi:
            direction = "more"
        elif value <= lo - metric.min_diff and value <= LOW_FACTOR * lo:
            direction = "less"
        else:
            continue
        if (name, direction) not in done:
            out.append(Finding(name, direction, float(value), tuple(v for _, v in usual),
                               tuple(d for d, _ in usual), day, hour))
    return out
