"""Synthetic Telco-shaped monthly snapshots, so the default run needs no download.

How the customer base is modelled
- The base has `rows` *slots*. Slot j is held by one customer at a time; each occupant stays a
  fixed number of months (the slot's cycle, 4..80, mostly 72..80) and is then replaced by a
  newcomer. Slot cycles are staggered, so about 3.4% of customers change from one month to the
  next (consecutive months share about 96.5% of IDs) and the tenure mix is U-shaped-ish: many
  recent sign-ups, a flat middle, a pile at the 72-month cap (mean about 32).
- A customer is the pair (slot j, generation g) packed into one integer key. Every attribute of
  a customer is a counter-based hash (splitmix64) of (seed, attribute, key), so a customer's
  attributes and `customerID` are the same in every month, and a snapshot with fewer rows is
  the first rows of one with more.
  Tenure grows by one a month (capped at 72); the contract can move up as tenure grows; the
  churn label is a fresh Bernoulli draw per (seed, customer, month) from a logistic model.
- Months are counted from 2020-01; periods 2000-01..2099-12 are accepted.
- Drift: `scenario` picks what moves, `drift` in [0, 1] how much. "price_rise" raises
  MonthlyCharges by up to 15% (past the public file's 118.75 maximum) and makes churn more
  sensitive to charges; "fibre_launch" moves up to 15 points of customers to fibre and makes
  fibre customers churn more; "contract_shock" (concept drift) weakens what keeps customers (a
  long contract or tenure), reversed at drift 1: a champion trained before it decays. With
  drift 0 every scenario is "none"; "none" ignores drift.

The marginal mixes, the service-driven price list and the conditional tables are rounded from
the public IBM Telco data; no rows or IDs are copied. Everything is vectorised numpy: no global
random state, no work at import time.
"""

from __future__ import annotations

import math
import operator
import re
from enum import IntEnum
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from tasks.data.counter_hash import CounterDraws, hash_below, stream_key
from tasks.data.request import DRIFT_SCENARIOS
from tasks.data.schema import (
    CATEGORICAL_DOMAINS,
    COLUMNS,
    ID_COLUMN,
    NEGATIVE_LABEL,
    POSITIVE_LABEL,
    TARGET,
)

_PERIOD = re.compile(r"(\d{4})-(\d{2})")
_EPOCH_YEAR = 2020
_MIN_YEAR, _MAX_YEAR = 2000, 2099
# The ID format holds 10^4 * 26^5 (about 1.2e11) IDs; IDs are unique while customer keys
# (slot * _GENERATION_RANGE + ...) stay below that, which this bound guarantees.
_MAX_ROWS = 10_000_000
_MAX_TENURE = 72

# Slot cycles (months an occupant stays): (share of slots, shortest, longest). Fitted so the
# tenure histogram is close to the public file's at a monthly turnover of about 3.4%.
_CYCLES: tuple[tuple[float, int, int], ...] = ((0.06, 4, 6), (0.12, 7, 18), (0.82, 72, 80))
# Generations are packed under the slot index: generation + offset must fit in [0, range).
_GENERATION_RANGE = 4096
_GENERATION_OFFSET = 2048


_ID_DIGITS = 10_000
_ID_LETTERS = 26**5
_ID_SPACE = _ID_DIGITS * _ID_LETTERS
# Coprime with 2, 5 and 13 (the factors of _ID_SPACE) and small enough that key * A < 2^63.
_ID_MULTIPLIER = 48_271_023

# Churn model (log-odds). Intercept and latent-noise scale tuned so that drift 0 gives ~26%
# churn and a one-hot logistic regression a holdout ROC-AUC of ~0.845, as on the public file.
_CHURN_INTERCEPT = -0.05
_CHURN_LATENT_SD = 0.8
_CHURN_CONTRACT = (0.0, -1.3, -2.6)  # Month-to-month, One year, Two year
_CHURN_LOG_TENURE = -0.55
_CHURN_INTERNET = (0.0, 0.75, -0.7)  # DSL, Fiber optic, No
_CHURN_ECHECK = 0.45
_CHURN_PAPERLESS = 0.3
_CHURN_SENIOR = 0.3
_CHURN_NO_TECH_SUPPORT = 0.3
_CHURN_NO_SECURITY = 0.3
_CHURN_DEPENDENTS = -0.15
_CHURN_PER_10_DOLLARS = 0.12
_CHARGES_PIVOT = 65.0

_PRICE_RISE = 0.15  # MonthlyCharges multiplier at drift 1 is 1 + this
_PRICE_SENSITIVITY = 1.5  # charge coefficient multiplier at drift 1 is 1 + this
_FIBRE_SHIFT = 0.15  # share of customers moved to fibre at drift 1
_FIBRE_CHURN = 0.35  # extra log-odds for fibre customers at drift 1

# Prices (USD/month), recovered almost exactly by a linear fit on the public file.
_PRICE_PHONE = 20.0
_PRICE_EXTRA_LINES = 5.0
_PRICE_INTERNET = (25.0, 50.0, 0.0)  # DSL, Fiber optic, No
_PRICE_ADDON = 5.0
_PRICE_STREAMING = 10.0
_MIN_CHARGE, _MAX_CHARGE = 18.25, 118.75

_ADDONS = ("OnlineSecurity", "OnlineBackup", "DeviceProtection", "TechSupport")
_STREAMING = ("StreamingTV", "StreamingMovies")
# P(add-on | DSL), P(add-on | Fiber optic).
_ADDON_RATE = {
    "OnlineSecurity": (0.49, 0.27),
    "OnlineBackup": (0.45, 0.43),
    "DeviceProtection": (0.44, 0.44),
    "TechSupport": (0.49, 0.28),
    "StreamingTV": (0.40, 0.57),
    "StreamingMovies": (0.40, 0.57),
}
# Rows: InternetService code (DSL, Fiber optic, No).
_MULTIPLE_LINES_RATE = (0.40, 0.63, 0.22)  # among phone customers
_PAPERLESS_RATE = (0.55, 0.77, 0.29)
_NO_PHONE_RATE_DSL = 0.28  # only DSL customers go without phone service
# P(internet = Fiber optic), P(internet = DSL) for non-senior and senior customers.
_INTERNET_RATE = ((0.384, 0.366), (0.728, 0.226))
_SENIOR_RATE = 0.162
_PARTNER_RATE = 0.483
_DEPENDENTS_RATE = (0.10, 0.51)  # without, with a partner
# P(contract >= One year) and P(Two year) by tenure (piecewise linear between knots).
_CONTRACT_KNOTS = (0, 1, 4, 9, 18, 30, 42, 54, 66, 72)
_CONTRACT_AT_LEAST_ONE_YEAR = (0.01, 0.015, 0.044, 0.155, 0.27, 0.404, 0.568, 0.72, 0.888, 0.97)
_CONTRACT_TWO_YEAR = (0.003, 0.003, 0.012, 0.054, 0.079, 0.118, 0.222, 0.323, 0.603, 0.85)
_CONTRACT_PARTNER_LOGIT = 0.5  # partners sit on longer contracts
# P(payment method) by [contract][internet], in the schema's order: bank, card, e-check, mail.
_PAYMENT_RATE = (
    ((0.16, 0.15, 0.39, 0.30), (0.15, 0.14, 0.62, 0.09), (0.12, 0.12, 0.14, 0.62)),
    ((0.25, 0.30, 0.21, 0.24), (0.29, 0.28, 0.36, 0.07), (0.25, 0.21, 0.09, 0.45)),
    ((0.36, 0.38, 0.09, 0.17), (0.38, 0.36, 0.21, 0.05), (0.28, 0.30, 0.03, 0.39)),
)
_TOTAL_CHARGES_SD = 0.05  # lifetime charges deviate from tenure * current price by ~5%


class _Stream(IntEnum):
    """One independent hash stream per random quantity, so adding one shifts no other."""

    CYCLE_GROUP = 1
    CYCLE_LENGTH = 2
    CYCLE_PHASE = 3
    ID = 4
    GENDER = 5
    SENIOR = 6
    PARTNER = 7
    DEPENDENTS = 8
    NEW_TENURE = 9
    INTERNET = 10
    PHONE = 11
    MULTIPLE_LINES = 12
    ADDON = 13  # + index of the add-on (6 streams)
    CONTRACT = 20
    PAPERLESS = 21
    PAYMENT = 22
    PRICE_NOISE_1 = 23
    PRICE_NOISE_2 = 24
    TOTAL_NOISE_1 = 25
    TOTAL_NOISE_2 = 26
    LATENT_1 = 27
    LATENT_2 = 28
    CHURN = 29


def generate_snapshot(
    period: str,
    *,
    seed: int = 42,
    rows: int = 7043,
    drift: float = 0.0,
    scenario: str = "none",
) -> pd.DataFrame:
    """A Telco-shaped snapshot of the customer base at month `period` ("YYYY-MM")."""
    month = _month_index(period)
    seed, rows = operator.index(seed), operator.index(rows)  # numpy ints would overflow below
    _check_arguments(rows, drift, scenario)
    strength = 0.0 if scenario == "none" else float(drift)
    price_rise = strength if scenario == "price_rise" else 0.0
    fibre_launch = strength if scenario == "fibre_launch" else 0.0
    loyalty = 1.0 - 2.0 * strength * (scenario == "contract_shock")

    keys, tenure = _occupants(seed, rows, month)
    draw = CounterDraws(seed, keys)

    senior = draw.uniform(_Stream.SENIOR) < _SENIOR_RATE
    partner = draw.uniform(_Stream.PARTNER) < _PARTNER_RATE
    dependents = draw.uniform(_Stream.DEPENDENTS) < np.take(_DEPENDENTS_RATE, partner)
    internet = _internet(draw.uniform(_Stream.INTERNET), senior, fibre_launch)
    has_internet = internet != 2
    phone = (internet != 0) | (draw.uniform(_Stream.PHONE) >= _NO_PHONE_RATE_DSL)
    extra_lines = phone & (
        draw.uniform(_Stream.MULTIPLE_LINES) < np.take(_MULTIPLE_LINES_RATE, internet)
    )
    addons = {
        name: has_internet
        & (
            draw.uniform(_Stream.ADDON + n)
            < np.where(internet == 1, _ADDON_RATE[name][1], _ADDON_RATE[name][0])
        )
        for n, name in enumerate(_ADDON_RATE)
    }
    contract = _contract(draw.uniform(_Stream.CONTRACT), tenure, partner)
    paperless = draw.uniform(_Stream.PAPERLESS) < np.take(_PAPERLESS_RATE, internet)
    payment = _payment(draw.uniform(_Stream.PAYMENT), contract, internet)

    charges = (
        _PRICE_PHONE * phone
        + _PRICE_EXTRA_LINES * extra_lines
        + np.take(_PRICE_INTERNET, internet)
        + _PRICE_ADDON * sum(addons[name] for name in _ADDONS)
        + _PRICE_STREAMING * sum(addons[name] for name in _STREAMING)
        # Discounts and rounding: the public file's prices sit within about $2 of the list.
        + np.clip(draw.normal(_Stream.PRICE_NOISE_1, _Stream.PRICE_NOISE_2), -2.0, 2.0)
    )
    charges = np.clip(charges, _MIN_CHARGE, _MAX_CHARGE) * (1.0 + _PRICE_RISE * price_rise)
    charges = np.round(charges, 2)
    total = _total_charges(draw, tenure, charges)

    # What keeps customers, scaled around its mean by `loyalty`: the drivers change, the rate stays.
    loyal = np.take(_CHURN_CONTRACT, contract) + _CHURN_LOG_TENURE * np.log1p(tenure)
    if loyalty != 1.0 and loyal.size:  # exactly the old labels without the shock
        loyal = loyal.mean() + loyalty * (loyal - loyal.mean())
    log_odds = (
        _CHURN_INTERCEPT
        + loyal
        + np.take(_CHURN_INTERNET, internet)
        + _FIBRE_CHURN * fibre_launch * (internet == 1)
        + _CHURN_ECHECK * (payment == 2)
        + _CHURN_PAPERLESS * paperless
        + _CHURN_SENIOR * senior
        + _CHURN_NO_TECH_SUPPORT * (has_internet & ~addons["TechSupport"])
        + _CHURN_NO_SECURITY * (has_internet & ~addons["OnlineSecurity"])
        + _CHURN_DEPENDENTS * dependents
        + _CHURN_PER_10_DOLLARS
        * (1.0 + _PRICE_SENSITIVITY * price_rise)
        * (charges - _CHARGES_PIVOT)
        / 10.0
        # Unobserved satisfaction: keeps the label from being a function of the columns.
        + _CHURN_LATENT_SD * draw.normal(_Stream.LATENT_1, _Stream.LATENT_2)
    )
    churn = draw.uniform(_Stream.CHURN, salt=month) < 1.0 / (1.0 + np.exp(-log_odds))

    # Categorical columns travel as small integer codes in their schema domain's order.
    codes: dict[str, NDArray[Any]] = {
        "gender": draw.uniform(_Stream.GENDER) < 0.505,
        "Partner": partner,
        "Dependents": dependents,
        "PhoneService": phone,
        "MultipleLines": np.where(phone, extra_lines * 2, 1),
        "InternetService": internet,
        **{name: np.where(has_internet, taken * 2, 1) for name, taken in addons.items()},
        "Contract": contract,
        "PaperlessBilling": paperless,
        "PaymentMethod": payment,
        TARGET: churn,
    }
    numbers: dict[str, NDArray[Any]] = {
        "SeniorCitizen": senior.astype(np.int64),
        "tenure": tenure,
        "MonthlyCharges": charges,
        "TotalCharges": total,
    }
    return _assemble(_customer_ids(seed, keys), codes, numbers)


def _month_index(period: str) -> int:
    """Months since 2020-01 for a "YYYY-MM" period."""
    match = _PERIOD.fullmatch(period) if isinstance(period, str) else None
    if match is None:
        raise ValueError(f"period must look like 'YYYY-MM' (e.g. '2026-01'), got {period!r}")
    year, month = int(match[1]), int(match[2])
    if not 1 <= month <= 12:
        raise ValueError(f"period {period!r} has month {month:02d}; months are 01..12")
    if not _MIN_YEAR <= year <= _MAX_YEAR:
        raise ValueError(f"period {period!r} is outside {_MIN_YEAR}-01..{_MAX_YEAR}-12")
    return (year - _EPOCH_YEAR) * 12 + (month - 1)


def _check_arguments(rows: int, drift: float, scenario: str) -> None:
    """Reject arguments the generator cannot honour, naming what is allowed."""
    if not 1 <= rows <= _MAX_ROWS:
        raise ValueError(f"rows must be between 1 and {_MAX_ROWS:,}, got {rows}")
    if not (math.isfinite(drift) and 0.0 <= drift <= 1.0):
        raise ValueError(f"drift must be between 0 and 1, got {drift}")
    if scenario not in DRIFT_SCENARIOS:
        allowed = ", ".join(repr(s) for s in DRIFT_SCENARIOS)
        raise ValueError(f"unknown drift scenario {scenario!r}; allowed: {allowed}")


def _occupants(seed: int, rows: int, month: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Customer keys and tenures of the `rows` slots at `month`."""
    slots = np.arange(rows, dtype=np.int64)
    slot_draw = CounterDraws(seed, slots)
    group = np.searchsorted(
        np.cumsum([c[0] for c in _CYCLES]), slot_draw.uniform(_Stream.CYCLE_GROUP)
    )
    group = np.minimum(group, len(_CYCLES) - 1)
    shortest = np.take([c[1] for c in _CYCLES], group)
    spread = np.take([c[2] - c[1] + 1 for c in _CYCLES], group)
    cycle = shortest + (slot_draw.uniform(_Stream.CYCLE_LENGTH) * spread).astype(np.int64)
    phase = (slot_draw.uniform(_Stream.CYCLE_PHASE) * cycle).astype(np.int64)
    generation, months_in = np.divmod(month + phase, cycle)
    keys = slots * _GENERATION_RANGE + (generation + _GENERATION_OFFSET)
    # Newcomers arrive in their first full month (tenure 1); a few are caught before it ends.
    first = np.where(CounterDraws(seed, keys).uniform(_Stream.NEW_TENURE) < 0.05, 0, 1)
    tenure = np.minimum(first + months_in, _MAX_TENURE).astype(np.int64)
    return keys, tenure


def _internet(
    u: NDArray[np.float64], senior: NDArray[np.bool_], fibre_launch: float
) -> NDArray[np.intp]:
    """InternetService code (0 DSL, 1 Fiber optic, 2 No); a fibre launch converts the others."""
    rates = np.asarray(_INTERNET_RATE)[senior.astype(np.intp)]
    fibre = rates[:, 0] + _FIBRE_SHIFT * fibre_launch
    # The launch takes 60% of its new fibre customers from DSL and 40% from no internet.
    dsl_end = rates[:, 0] + rates[:, 1] + 0.4 * _FIBRE_SHIFT * fibre_launch
    return np.where(u < fibre, 1, np.where(u < dsl_end, 0, 2)).astype(np.intp)


def _contract(
    u: NDArray[np.float64], tenure: NDArray[np.int64], partner: NDArray[np.bool_]
) -> NDArray[np.intp]:
    """Contract code by tenure; the fixed draw `u` makes a customer's contract only move up."""
    shift = _CONTRACT_PARTNER_LOGIT * (partner - _PARTNER_RATE)
    at_least_one = _shift_probability(
        np.interp(tenure, _CONTRACT_KNOTS, _CONTRACT_AT_LEAST_ONE_YEAR), shift
    )
    two_year = _shift_probability(np.interp(tenure, _CONTRACT_KNOTS, _CONTRACT_TWO_YEAR), shift)
    return ((u < at_least_one).astype(np.intp) + (u < two_year)).astype(np.intp)


def _shift_probability(p: NDArray[np.float64], shift: NDArray[np.float64]) -> NDArray[np.float64]:
    """Move probabilities by `shift` on the log-odds scale."""
    return 1.0 / (1.0 + np.exp(-(np.log(p / (1.0 - p)) + shift)))


def _payment(
    u: NDArray[np.float64], contract: NDArray[np.intp], internet: NDArray[np.intp]
) -> NDArray[np.intp]:
    """PaymentMethod code drawn from the (contract, internet) table."""
    cumulative = np.cumsum(np.asarray(_PAYMENT_RATE), axis=2)
    cumulative /= cumulative[:, :, -1:]
    bounds = cumulative[contract, internet]
    return np.minimum((u[:, None] >= bounds).sum(axis=1), 3).astype(np.intp)


def _total_charges(
    draw: CounterDraws, tenure: NDArray[np.int64], charges: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Lifetime charges: about tenure * price, never below one month, blank in month zero."""
    factor = np.clip(
        1.0 + _TOTAL_CHARGES_SD * draw.normal(_Stream.TOTAL_NOISE_1, _Stream.TOTAL_NOISE_2),
        0.8,
        1.25,
    )
    total = np.maximum(np.round(tenure * charges * factor, 2), charges)
    total = np.where(tenure == 1, charges, total)
    return np.where(tenure == 0, np.nan, total)


def _assemble(
    ids: NDArray[np.object_], codes: dict[str, NDArray[Any]], numbers: dict[str, NDArray[Any]]
) -> pd.DataFrame:
    """The frame in schema order. Labels are written straight into one object block, because a
    dict of object columns would be copied once more by the DataFrame constructor."""
    text_columns = [column for column in COLUMNS if column not in numbers]
    block = np.empty((ids.size, len(text_columns)), dtype=object)
    for position, column in enumerate(text_columns):
        if column == ID_COLUMN:
            block[:, position] = ids
        else:
            domain = CATEGORICAL_DOMAINS.get(column, (NEGATIVE_LABEL, POSITIVE_LABEL))
            block[:, position] = np.asarray(domain, dtype=object)[codes[column].astype(np.intp)]
    frame = pd.DataFrame(block, columns=text_columns, copy=False)
    for column, values in numbers.items():
        frame.insert(COLUMNS.index(column), column, values)
    return frame


def _customer_ids(seed: int, keys: NDArray[np.int64]) -> NDArray[np.object_]:
    """IDs like "0042-QWXYZ" (the public format): a seeded bijection of the key, so distinct keys never collide."""
    x = (keys % _ID_SPACE * _ID_MULTIPLIER + stream_key(seed, _Stream.ID) % _ID_SPACE) % _ID_SPACE
    digits, letters = x % _ID_DIGITS, x // _ID_DIGITS
    # Three Feistel rounds: each adds a hash of one half to the other, so the map stays one-to-one
    # while neighbouring keys get unrelated-looking IDs.
    for round_ in range(3):
        salt = stream_key(seed, _Stream.ID, salt=round_ + 1)
        if round_ % 2 == 0:
            digits = (digits + hash_below(letters, salt, _ID_DIGITS)) % _ID_DIGITS
        else:
            letters = (letters + hash_below(digits, salt, _ID_LETTERS)) % _ID_LETTERS
    chars = np.empty((keys.size, 10), dtype=np.uint8)
    for position in range(4):
        chars[:, 3 - position] = ord("0") + digits % 10
        digits = digits // 10
    chars[:, 4] = ord("-")
    for position in range(5):
        chars[:, 9 - position] = ord("A") + letters % 26
        letters = letters // 26
    return chars.view("S10").ravel().astype(str).astype(object)
