"""Batch scoring: chunked output, validation without the target, no champion, bad input, and a
Parquet base streamed batch by batch (the real Telco CSV as Parquet, a real PyCaret champion)."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from flows.parameters import RetrainParameters, ScoreParameters
from flows.retrain import retrain
from flows.score import score
from tasks.data.generate import generate_snapshot
from tasks.data.load import load_snapshot
from tasks.data.request import SnapshotRequest
from tasks.data.schema import CATEGORICAL_DOMAINS, ID_COLUMN, TARGET
from tasks.decision.campaign import Campaign
from tasks.errors import NoChampion, SnapshotRejected
from tasks.gate.suite import validate_snapshot
from tasks.scoring.batch import ParquetBase, ScoreSummary, score_parquet, write_scores
from tasks.scoring.sizes import DEFAULT_BATCH_ROWS
from tasks.training.model import ChurnModel, prepare_features
from tasks.training.train import train_challenger

PERIOD = "2026-05"
CAMPAIGN = Campaign()


@pytest.fixture(scope="module")
def sklearn_churn_model() -> ChurnModel:
    """A real (plain scikit-learn) churn model, fitted in a fraction of a second."""
    train = generate_snapshot("2026-01", rows=2000)
    pipeline = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), list(CATEGORICAL_DOMAINS)),
            remainder="passthrough",
        ),
        LogisticRegression(max_iter=2000),
    )
    features = prepare_features(train).fillna(0)
    pipeline.fit(features, train[TARGET] == "Yes")
    return ChurnModel(_FillNa(pipeline), threshold=0.4, algorithm="sklearn-lr")


class _FillNa:
    """TotalCharges is blank in a customer's first month; plain LR needs a number."""

    def __init__(self, pipeline: object) -> None:
        self.pipeline = pipeline

    def predict_proba(self, features: pd.DataFrame) -> object:
        return self.pipeline.predict_proba(features.fillna(0))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_scores_stream_in_chunks_to_csv_and_parquet(
    sklearn_churn_model: ChurnModel, tmp_path: Path, suffix: str
) -> None:
    customers = generate_snapshot("2026-02", rows=2500).drop(columns=[TARGET])
    out = tmp_path / f"scores{suffix}"
    summary = write_scores.fn(
        sklearn_churn_model, customers, output=out, version="7", campaign=CAMPAIGN,
        chunk_rows=1000,
    )  # fmt: skip
    scores = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    assert len(scores) == summary.rows == 2500
    assert scores["customerID"].tolist() == customers["customerID"].tolist()
    assert scores["churn_probability"].between(0, 1).all()
    above = scores["churn_probability"] >= 0.4
    assert (scores.loc[above, "churn_prediction"] == "Yes").all()
    assert (scores.loc[~above, "churn_prediction"] == "No").all()
    assert summary.predicted_churners == int(above.sum()) > 0
    assert set(scores["model_version"].astype(str)) == {"7"} and scores["scored_at"].nunique() == 1
    # Chunking does not change a single probability.
    whole = sklearn_churn_model.predict_proba(customers)
    assert scores["churn_probability"].to_numpy() == pytest.approx(whole)
    assert not list(tmp_path.glob("*.partial"))


@pytest.mark.parametrize(
    "campaign",
    [
        CAMPAIGN,
        Campaign(
            customers=333, save_rate=0.5, contact_cost=2.0, customer_value="24 * MonthlyCharges"
        ),
    ],
    ids=["top 10%", "333 customers"],
)
def test_the_campaign_list_is_flagged_to_its_capacity_with_expected_values(
    sklearn_churn_model: ChurnModel, tmp_path: Path, campaign: Campaign
) -> None:
    customers = generate_snapshot("2026-02", rows=2500).drop(columns=[TARGET])
    out = tmp_path / "scores.csv"
    summary = write_scores.fn(
        sklearn_churn_model, customers, output=out, version="7", campaign=campaign,
        chunk_rows=700,
    )  # fmt: skip
    scores = pd.read_csv(out)
    listed = scores["contact"]
    assert listed.sum() == summary.contacted == (250 if campaign.customers is None else 333)
    # The list is the riskiest customers: the ranking the decision judged.
    p = scores["churn_probability"]
    assert p[listed].min() >= p[~listed].max()
    factor = 12 if campaign.customers is None else 24
    value = factor * customers["MonthlyCharges"].to_numpy()
    expected = p * campaign.save_rate * value - campaign.contact_cost
    assert scores["expected_value"].to_numpy() == pytest.approx(expected.to_numpy())
    assert (
        f"{summary.contacted:,} (" in summary.describe()
        and "flagged to contact" in summary.describe()
    )
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob("*.scores.parquet"))


class _Constant:
    """Every customer the same churn probability: the whole base ties at the list's edge."""

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        return np.tile([0.6, 0.4], (len(features), 1))


def test_ties_at_the_edge_of_the_list_are_taken_in_the_base_order(tmp_path: Path) -> None:
    customers = generate_snapshot("2026-02", rows=1000).drop(columns=[TARGET])
    out = tmp_path / "scores.parquet"
    summary = write_scores.fn(
        ChurnModel(_Constant()), customers, output=out, version="1",
        campaign=Campaign(customers=137), chunk_rows=100,
    )  # fmt: skip
    listed = pd.read_parquet(out)["contact"].to_numpy()
    assert summary.contacted == listed.sum() == 137
    assert listed[:137].all() and not listed[137:].any()


def test_empty_input_is_refused(sklearn_churn_model: ChurnModel, tmp_path: Path) -> None:
    empty = generate_snapshot("2026-02", rows=10).iloc[0:0]
    with pytest.raises(ValueError, match="no rows"):
        write_scores.fn(
            sklearn_churn_model, empty, output=tmp_path / "s.csv", version="1", campaign=CAMPAIGN
        )


@pytest.mark.usefixtures("prefect_server")
def test_score_flow_with_the_champion(state_home: Path, tmp_path: Path) -> None:
    customers = generate_snapshot("2026-03", rows=800).drop(columns=[TARGET])
    source = tmp_path / "base-{period}.csv"
    customers.to_csv(tmp_path / "base-2026-03.csv", index=False)

    with pytest.raises(NoChampion, match="no champion"):
        score(ScoreParameters(data=str(source), period="2026-03"))

    retrain(
        RetrainParameters(
            period="2026-02", data="generated", models=["lr"], folds=3, generated_rows=1500
        )
    )
    summary = score(ScoreParameters(data=str(source), period="2026-03"))
    assert summary.rows == 800 and summary.model_version == "1"
    assert Path(summary.output) == state_home / "scores" / "2026-03-v1.csv"
    written = pd.read_csv(summary.output)
    assert written["customerID"].tolist() == customers["customerID"].tolist()
    # The champion's campaign (the default rule's: the top 10%) flags the list.
    assert written["contact"].sum() == summary.contacted == 80
    assert {"expected_value", "contact"} <= set(written.columns)
    # A campaign given for this run wins over the champion's.
    smaller = score(
        ScoreParameters(data=str(source), period="2026-03", campaign=Campaign(customers=25))
    )
    assert pd.read_csv(smaller.output)["contact"].sum() == smaller.contacted == 25

    broken = customers.drop(columns=["Contract"])
    broken.to_csv(tmp_path / "base-2026-04.csv", index=False)
    out = tmp_path / "never.csv"
    with pytest.raises(SnapshotRejected, match="Contract"):
        score(ScoreParameters(data=str(source), period="2026-04", output=str(out)))
    assert not out.exists()

    # The same customers as Parquet are streamed, never loaded whole, and score the same.
    # (The Parquet path still wants the target column: the typed guards require all 21.)
    _write_parquet(generate_snapshot("2026-03", rows=800), tmp_path / "base-2026-03.parquet", 300)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("flows.score.load_snapshot", _must_not_load)
        streamed = score(
            ScoreParameters(
                data=str(tmp_path / "base-{period}.parquet"), period="2026-03",
                output=str(tmp_path / "streamed.parquet"), batch_rows=1000, chunk_rows=1000,
            )
        )  # fmt: skip
    assert (streamed.rows, streamed.predicted_churners) == (800, summary.predicted_churners)
    by_csv = pd.read_csv(summary.output)
    by_parquet = pd.read_parquet(streamed.output)
    assert by_parquet[ID_COLUMN].tolist() == by_csv[ID_COLUMN].tolist()
    assert by_parquet["churn_probability"].to_numpy() == pytest.approx(
        by_csv["churn_probability"].to_numpy(), abs=1e-12
    )


def _must_not_load(*args: object, **kwargs: object) -> None:
    raise AssertionError("a Parquet base must be streamed, not loaded whole")


# --- A Parquet base streamed batch by batch ---------------------------------------------------


@pytest.fixture(scope="module")
def pycaret_champion(real_frame: pd.DataFrame) -> ChurnModel:
    """A real PyCaret champion (lr, 3 folds) trained on the real Telco CSV, as a retrain does."""
    return train_challenger.fn(real_frame, seed=42, models=["lr"], folds=3).model


@pytest.mark.parametrize(
    ("column", "value"),
    [(None, None), ("Contract", "Weekly"), ("gender", "Other"), ("Partner", None)],
    ids=["known values", "unseen one-hot value", "unseen binary value", "null binary value"],
)
def test_text_scores_the_same_as_categories(
    pycaret_champion: ChurnModel, real_frame: pd.DataFrame, column: str | None, value: object
) -> None:
    """The champion scores text features as categoricals (faster): what reaches the estimator,
    and so the probabilities, are bit for bit those of PyCaret's pipeline on the text, for
    values it never saw too."""
    rows = real_frame.head(500).copy()
    if column is not None:
        rows.loc[rows.index[::7], column] = value
    text = prepare_features(rows, version=pycaret_champion.feature_version)
    assert all(text[c].dtype == object for c in CATEGORICAL_DOMAINS)
    on_text = pycaret_champion.pipeline.predict_proba(text)[:, 1]
    # Categories in another order, as another Parquet file's dictionary may have them.
    shuffled = rows.astype({c: "category" for c in CATEGORICAL_DOMAINS})
    for c in CATEGORICAL_DOMAINS:
        shuffled[c] = shuffled[c].cat.reorder_categories(shuffled[c].cat.categories[::-1])
    assert pycaret_champion.text_as_categories
    for given in (rows, shuffled):
        np.testing.assert_array_equal(pycaret_champion.predict_proba(given), on_text)
    # Any estimator scores the same: its input is the same frame of numbers.
    encoders = pycaret_champion.pipeline[:-1]
    categorical = prepare_features(shuffled, version=pycaret_champion.feature_version)
    assert isinstance(categorical["Contract"].dtype, pd.CategoricalDtype)
    pd.testing.assert_frame_equal(
        encoders.transform(categorical), encoders.transform(text), check_exact=True
    )


def test_a_pipeline_fitted_on_text_gets_text_whatever_it_is_given(
    sklearn_churn_model: ChurnModel, real_frame: pd.DataFrame
) -> None:
    # A streamed Parquet read gives categoricals; older champions and other pipelines were
    # fitted on text (this one's fillna(0) refuses a categorical), so they get it back.
    rows = real_frame.head(500).copy()
    rows.loc[rows.index[::7], "Partner"] = None
    categorical = rows.astype({c: "category" for c in CATEGORICAL_DOMAINS})
    assert not sklearn_churn_model.text_as_categories
    np.testing.assert_array_equal(
        sklearn_churn_model.predict_proba(categorical), sklearn_churn_model.predict_proba(rows)
    )


def _write_parquet(frame: pd.DataFrame, path: Path, row_group_rows: int) -> Path:
    """`frame` as one Parquet file with row groups of `row_group_rows`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=row_group_rows
    )
    return path


def _write_folder(frame: pd.DataFrame, folder: Path, parts: int, row_group_rows: int) -> Path:
    """`frame` split in order over `parts` files part-0.parquet, part-1.parquet, ..."""
    for n, part in enumerate(np.array_split(np.arange(len(frame)), parts)):
        _write_parquet(frame.iloc[part], folder / f"part-{n}.parquet", row_group_rows)
    return folder


def _stream(model: ChurnModel, location: Path, output: Path, **reading: int) -> ScoreSummary:
    base = ParquetBase(str(location), PERIOD, **reading)
    return score_parquet.fn(model, base, output=output, version="3", campaign=CAMPAIGN)


@pytest.mark.parametrize("layout", ["file", "folder"])
def test_streamed_parquet_scores_equal_the_whole_frame_scores(
    pycaret_champion: ChurnModel, real_frame: pd.DataFrame, tmp_path: Path, layout: str
) -> None:
    base = (
        _write_parquet(real_frame, tmp_path / "base.parquet", 1000)
        if layout == "file"
        else _write_folder(real_frame, tmp_path / "base", 3, 700)
    )
    # The whole-frame path: the flow's load (input order kept), then chunked scoring.
    whole = load_snapshot.fn(SnapshotRequest(str(base), PERIOD, in_customer_order=False))
    expected = write_scores.fn(
        pycaret_champion, whole.frame, output=tmp_path / "whole.parquet", version="3",
        campaign=CAMPAIGN, chunk_rows=1000,
    )  # fmt: skip
    # Batches of 3,000 across row groups of 1,000 (or of 700, in three files), scored in 1,000s.
    streamed = _stream(
        pycaret_champion, base, tmp_path / "streamed.parquet", batch_rows=3000, chunk_rows=1000
    )

    assert pq.read_schema(tmp_path / "streamed.parquet") == pq.read_schema(
        tmp_path / "whole.parquet"
    )
    got = pd.read_parquet(tmp_path / "streamed.parquet").drop(columns="scored_at")
    want = pd.read_parquet(tmp_path / "whole.parquet").drop(columns="scored_at")
    if layout == "file":  # chunks of the same rows: every probability bit for bit
        pd.testing.assert_frame_equal(got, want, check_exact=True)
    else:  # batches end at files, so chunks differ, and BLAS rounds a few rows 1 ulp apart
        pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-13, atol=0)
    assert got[ID_COLUMN].tolist() == real_frame[ID_COLUMN].tolist()  # the input's order
    assert streamed.rows == expected.rows == len(real_frame)
    assert streamed.predicted_churners == expected.predicted_churners > 0
    assert not list(tmp_path.glob("*.partial"))


@pytest.mark.parametrize("layout", ["hive-partitions", "period-column"])
def test_only_the_period_is_streamed_as_a_whole_read_selects_it(
    pycaret_champion: ChurnModel, real_frame: pd.DataFrame, tmp_path: Path, layout: str
) -> None:
    months = real_frame.assign(period=np.where(real_frame.index % 3 == 0, "2026-04", PERIOD))
    if layout == "hive-partitions":  # base/period=2026-05/part-0.parquet, ...
        base = tmp_path / "base"
        for period, rows in months.groupby("period"):
            _write_parquet(
                rows.drop(columns="period"), base / f"period={period}" / "p.parquet", 900
            )
    else:
        base = _write_parquet(months, tmp_path / "base.parquet", 900)
    whole = load_snapshot.fn(SnapshotRequest(str(base), PERIOD, in_customer_order=False))
    streamed = _stream(pycaret_champion, base, tmp_path / "s.parquet", batch_rows=1000)
    wanted = months.loc[months["period"] == PERIOD, ID_COLUMN].tolist()
    assert whole.frame[ID_COLUMN].tolist() == wanted
    assert pd.read_parquet(tmp_path / "s.parquet")[ID_COLUMN].tolist() == wanted
    assert streamed.rows == len(wanted)


def _outside_the_set(frame: pd.DataFrame) -> pd.DataFrame:
    """Three customers of row group 4 (of 8) with a gender outside the suite's set."""
    frame = frame.copy()
    frame.loc[3500:3502, "gender"] = "Martian"
    return frame


def _text_in_a_number(frame: pd.DataFrame) -> pd.DataFrame:
    """TotalCharges as the CSV's text (blank for new customers), one cell of row group 4 not
    a number: that batch's column stays text, as it would in a whole read."""
    frame = frame.copy()
    totals = frame["TotalCharges"].map(lambda v: "" if pd.isna(v) else repr(v))
    totals.loc[3500] = "Martian"
    frame["TotalCharges"] = totals
    return frame


@pytest.mark.parametrize(
    ("defect", "problem"),
    [
        (_outside_the_set, r"  gender: 3 values outside \{Female, Male\}$"),
        (
            _text_in_a_number,
            # The bad cell and the batch's two blanks (tenure 0), as a whole read counts them.
            r"  TotalCharges: 3 values of wrong type \(expected numeric, got object\)",
        ),
    ],
    ids=["value-outside-the-set", "text-in-a-number"],
)
def test_a_bad_row_group_in_the_middle_rejects_the_base_and_writes_nothing(
    pycaret_champion: ChurnModel,
    real_frame: pd.DataFrame,
    tmp_path: Path,
    defect: Callable[[pd.DataFrame], pd.DataFrame],
    problem: str,
) -> None:
    base = _write_parquet(defect(real_frame), tmp_path / "base.parquet", 1000)
    output = tmp_path / "scores.parquet"
    output.write_bytes(b"last month's scores")

    rows = r" rows 3,001-4,000 rejected: \d+ of \d+ checks failed on 1,000 rows\n"
    with pytest.raises(
        SnapshotRejected, match=rf"^Snapshot {re.escape(str(base))}{rows}(.*\n)*{problem}"
    ) as rejected:
        _stream(pycaret_champion, base, output, batch_rows=1000, chunk_rows=1000)
    assert "Martian" not in str(rejected.value)  # counts and domains, never a customer's value
    assert output.read_bytes() == b"last month's scores"
    assert not list(tmp_path.glob("*.partial"))


class _BreaksOn:
    """A pipeline that fails, as a model does on values it never saw, on one gender."""

    def __init__(self, pipeline: object, gender: str) -> None:
        self.pipeline, self.gender = pipeline, gender

    def predict_proba(self, features: pd.DataFrame) -> object:
        if (features["gender"] == self.gender).any():
            raise ValueError(f"the model cannot read gender {self.gender!r}")
        return self.pipeline.predict_proba(features)  # type: ignore[attr-defined]


@pytest.mark.parametrize("gender", ["Martian", "Female"], ids=["rejected", "passed"])
def test_a_model_error_on_a_rejected_batch_reports_the_rejection(
    sklearn_churn_model: ChurnModel, real_frame: pd.DataFrame, tmp_path: Path, gender: str
) -> None:
    # The suite checks a batch while the model scores it: when both fail, the suite's
    # verdict (an expected failure, named) is raised; a model error alone stays an error.
    base = _write_parquet(_outside_the_set(real_frame), tmp_path / "base.parquet", 1000)
    model = ChurnModel(
        _BreaksOn(sklearn_churn_model.pipeline, gender), threshold=0.4, algorithm="breaks"
    )
    output = tmp_path / "scores.parquet"
    expected = (
        pytest.raises(SnapshotRejected, match=r" rows 3,001-4,000 rejected: .*\n  gender: 3 ")
        if gender == "Martian"
        else pytest.raises(ValueError, match="the model cannot read gender 'Female'")
    )
    with expected:
        _stream(model, base, output, batch_rows=1000, chunk_rows=1000)
    assert not output.exists() and not list(tmp_path.glob("*.partial"))
    assert not [t for t in threading.enumerate() if t.name.startswith("churn-retrain-suite")]


def test_a_customer_in_two_batches_is_refused_as_in_one(
    pycaret_champion: ChurnModel, real_frame: pd.DataFrame, tmp_path: Path
) -> None:
    twice = real_frame.copy()
    twice.loc[6000, ID_COLUMN] = twice.loc[10, ID_COLUMN]  # batch 1 and batch 7 of 8
    base = _write_parquet(twice, tmp_path / "base.parquet", 1000)
    output = tmp_path / "scores.csv"
    with pytest.raises(
        SnapshotRejected,
        match=r"rejected: 1 of 1 checks failed on 7,043 rows\n  customerID: 2 rows share their "
        r"value with another row \(in different batches\)$",
    ):
        _stream(pycaret_champion, base, output, batch_rows=1000, chunk_rows=1000)
    assert not output.exists() and not list(tmp_path.glob("*.partial"))


def _set(column: str, rows: slice, value: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        frame.loc[rows, column] = value
        return frame

    return change


def _below_monthly(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[:800, "TotalCharges"] = frame.loc[:800, "MonthlyCharges"] - 1
    return frame


#: Broken months for the suite: each is refused with the same report, streamed or whole.
SUITE_CASES: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "clean": lambda frame: frame,
    "outside the set": _set("gender", slice(10, 12), "Martian"),
    "case of a category": _set("PaymentMethod", slice(0, 5), "electronic check"),
    "nulls": _set("Contract", slice(100, 103), None),
    "tenure out of range": _set("tenure", slice(5, 6), 99),
    "charges out of range": _set("MonthlyCharges", slice(7, 9), 250.0),
    "too many blank totals": _set("TotalCharges", slice(0, 200), np.nan),
    "totals below monthly": _below_monthly,
    "no phone, yet lines": _set("MultipleLines", slice(0, 50), "No phone service"),
    "no internet, yet security": _set("InternetService", slice(0, 40), "No"),
    "a customer twice": lambda frame: frame.assign(
        **{ID_COLUMN: frame[ID_COLUMN].where(frame.index != 1, frame[ID_COLUMN].iloc[0])}
    ),
}


@pytest.mark.parametrize("case", list(SUITE_CASES))
def test_streamed_validation_reports_what_whole_frame_validation_reports(
    pycaret_champion: ChurnModel, real_frame: pd.DataFrame, tmp_path: Path, case: str
) -> None:
    """One batch holding the whole base: the suite sees its text columns as categoricals
    (faster), and must come to the same verdict with the same counts."""
    frame = SUITE_CASES[case](real_frame)
    base = _write_parquet(frame, tmp_path / "base.parquet", 1000)
    typed = load_snapshot.fn(SnapshotRequest(str(base), PERIOD, in_customer_order=False)).frame
    output = tmp_path / "scores.csv"
    try:
        expected = validate_snapshot.fn(typed, source="whole", for_scoring=True).failures
    except SnapshotRejected as exc:
        expected = exc.report.failures
    try:
        _stream(pycaret_champion, base, output, batch_rows=len(frame))
        failures: tuple[object, ...] = ()
    except SnapshotRejected as exc:
        failures = exc.report.failures
    assert failures == expected
    assert bool(expected) == (case != "clean") and output.exists() == (case == "clean")


def test_the_flow_batch_default_is_the_task_default() -> None:
    assert ScoreParameters(data="x.parquet").batch_rows == DEFAULT_BATCH_ROWS
