"""The breach forecast's accuracy (issue 14): a synthetic day replayed in memory.

A seeded day of arrivals in three specialties, doctors on fixed shifts (one
specialty with nobody at night) and answer times drawn at random. The replay
plays the day minute by minute as the doctors' queue works: a free doctor on duty
takes the first question of their specialties in the queue's order (urgent first,
then due time) and answers it after a random time (log-normal, median
ANSWER_MEDIAN_MINUTES), finishing it even past the end of the shift.

Forecasts come from the real `consultations.forecast.forecast`, given only what the
portal knows at that moment: the unanswered questions (those being written count
as waiting: the portal cannot see them), the doctors' duty hours, and a pace
measured as the median of a separate "last week" of answer times. They are
compared with the outcome in two ways:

- at arrival: for every question, the forecast made when it was asked;
- the dashboard's list: every 15 minutes, "likely to breach in the next hour"
  (forecast to breach, due within the hour, not yet late) for the questions
  still unanswered and due within the hour.

Precision: of the questions forecast to breach, the share that did. Recall: of
the questions that breached, the share forecast. Run alone with
`python -m bench.forecast` (no database needed).
"""

import json
import math
import random
import statistics
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

SEED = 14
DAY = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
ANSWER_MEDIAN_MINUTES = 20.0
ANSWER_SIGMA = 0.6  # log-normal spread: a quarter of answers take over 30 min
URGENT_SHARE = 0.05
LIST_EVERY = timedelta(minutes=15)
# The product's promise (SLA_ANSWER_HOURS, SLA_URGENT_ANSWER_HOURS by default), fixed here so
# the replay does not change with the bench's own short windows for the escalation test.
WINDOW, URGENT_WINDOW = timedelta(hours=4), timedelta(hours=1)

# Questions per hour by specialty and hour of the day (a busy clinic's day, a quiet night).
ARRIVALS = {
    "general": [1.5] * 7 + [6] * 5 + [7] * 6 + [4] * 4 + [2] * 2,
    "skin": [0.3] * 7 + [3] * 11 + [1] * 6,
    "heart": [0.3] * 7 + [2.5] * 11 + [0.5] * 6,
}
# Each doctor's shift (start hour, end hour) in UTC and specialties: heart has nobody at night.
SHIFTS = [
    ((0, 8), ("general",)),
    ((7, 15), ("general",)),
    ((8, 16), ("general",)),
    ((11, 19), ("general", "skin")),
    ((15, 24), ("general",)),
    ((8, 16), ("skin",)),
    ((9, 17), ("heart",)),
    ((13, 21), ("heart",)),
]
SPECIALTY_IDS = {name: n for n, name in enumerate(ARRIVALS, start=1)}


@dataclass
class Asked:
    pk: int
    specialty_id: int
    is_urgent: bool
    asked_at: datetime
    due_at: datetime
    answered_at: datetime | None = None

    def breached(self) -> bool:
        return self.answered_at is None or self.answered_at > self.due_at


def _answer_minutes(rng: random.Random) -> float:
    return rng.lognormvariate(math.log(ANSWER_MEDIAN_MINUTES), ANSWER_SIGMA)


def shift_intervals(days: int = 3) -> list[tuple[frozenset[int], list[tuple[datetime, datetime]]]]:
    """Every doctor's specialties and on-duty intervals over `days` days from DAY."""
    doctors = []
    for (start, end), names in SHIFTS:
        intervals = [(DAY + timedelta(days=d, hours=start), DAY + timedelta(days=d, hours=end)) for d in range(days)]
        doctors.append((frozenset(SPECIALTY_IDS[n] for n in names), intervals))
    return doctors


def arrivals(rng: random.Random) -> list[Asked]:
    """A day of questions: a Poisson process per specialty with the hourly rates above."""
    asked = []
    for name, rates in ARRIVALS.items():
        for hour, rate in enumerate(rates):
            at = DAY + timedelta(hours=hour)
            end = at + timedelta(hours=1)
            while True:
                at += timedelta(hours=rng.expovariate(rate))
                if at >= end:
                    break
                urgent = rng.random() < URGENT_SHARE
                moment = at.replace(second=0, microsecond=0)
                asked.append(
                    Asked(0, SPECIALTY_IDS[name], urgent, moment, moment + (URGENT_WINDOW if urgent else WINDOW))
                )
    asked.sort(key=lambda q: (q.asked_at, q.specialty_id))
    for pk, question in enumerate(asked, start=1):
        question.pk = pk
    return asked


def play(asked: list[Asked], doctors, rng: random.Random) -> None:
    """The day as it happens, minute by minute: sets each question's `answered_at`."""
    from consultations.forecast import queue_order

    busy_until = [DAY] * len(doctors)
    waiting: list[Asked] = []
    pending = list(asked)
    t = DAY
    last = DAY + timedelta(days=len(doctors[0][1]))
    while (pending or waiting) and t < last:
        while pending and pending[0].asked_at <= t:
            waiting.append(pending.pop(0))
        waiting.sort(key=queue_order)
        for n, (specialties, intervals) in enumerate(doctors):
            if busy_until[n] > t or not any(b <= t < e for b, e in intervals):
                continue
            mine = next((q for q in waiting if q.specialty_id in specialties), None)
            if mine is None:
                continue
            waiting.remove(mine)
            mine.answered_at = t + timedelta(minutes=_answer_minutes(rng))
            busy_until[n] = mine.answered_at
        t += timedelta(minutes=1)


def forecast_at(now: datetime, asked: list[Asked], doctors, pace: float) -> dict:
    """The real forecast, given what the portal knows at `now`."""
    from consultations import forecast

    open_now = [
        forecast.Waiting(q.pk, q.specialty_id, q.is_urgent, q.due_at)
        for q in asked
        if q.asked_at <= now and (q.answered_at is None or q.answered_at > now)
    ]
    team = []
    for n, (specialties, intervals) in enumerate(doctors):
        ahead = forecast.merge((max(b, now), e) for b, e in intervals if e > now)
        if ahead:
            team.append(forecast.Doctor(pk=n, specialty_ids=specialties, intervals=ahead))
    return forecast.forecast(open_now, team, pace, now)


def scores(pairs: list[tuple[bool, bool]]) -> dict:
    """(forecast, outcome) pairs -> counts, precision and recall of "will breach"."""
    tp = sum(1 for said, was in pairs if said and was)
    fp = sum(1 for said, was in pairs if said and not was)
    fn = sum(1 for said, was in pairs if not said and was)
    return {
        "forecasts": len(pairs),
        "breached": tp + fn,
        "true_positive": tp,
        "false_positive": fp,
        "false_negative": fn,
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
    }


def replay(seed: int = SEED) -> dict:
    """The day replayed: the forecast's precision and recall, at arrival and as the dashboard's list."""
    from django.utils import timezone

    rng = random.Random(seed)
    history = random.Random(seed + 1)
    pace = statistics.median(_answer_minutes(history) for _ in range(300))
    doctors = shift_intervals()
    asked = arrivals(rng)
    play(asked, doctors, rng)
    by_pk = {q.pk: q for q in asked}
    with timezone.override("UTC"):
        at_arrival = [(forecast_at(q.asked_at, asked, doctors, pace)[q.pk].will_breach, q.breached()) for q in asked]
        listed = []
        now = DAY
        while now < DAY + timedelta(days=1, hours=4):
            for pk, said in forecast_at(now, asked, doctors, pace).items():
                question = by_pk[pk]
                if now <= question.due_at <= now + timedelta(hours=1):
                    listed.append((said.will_breach, question.breached()))
            now += LIST_EVERY
    return {
        "seed": seed,
        "questions": len(asked),
        "breached": sum(q.breached() for q in asked),
        "pace_minutes": round(pace, 1),
        "at_arrival": scores(at_arrival),
        "next_hour_list": scores(listed),
    }


def main() -> int:
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    django.setup()
    print(json.dumps(replay(int(sys.argv[1]) if len(sys.argv) > 1 else SEED), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
