"""The champion outside the project: a clean virtualenv built from the model's requirements.txt.

No project code is importable there; the model must load, score raw CSV rows (blank
TotalCharges included), serve over HTTP, write nothing into the caller's directory, warn of no
version mismatch, and never quote the input (customer IDs) in an error.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest

from flows.parameters import RetrainParameters
from flows.retrain import retrain
from tasks.settings import Settings
from tests.servers import clean_env, free_port, start, stop, wait_http

pytestmark = [
    pytest.mark.slow,
    pytest.mark.usefixtures("prefect_server"),
    # The first run builds the virtualenv (~1-2 min with a warm uv cache, more without).
    pytest.mark.timeout(1500),
]

MODEL_URI = "models:/telco-churn@champion"
PROJECT = Path(__file__).resolve().parents[2]
#: Where clean virtualenvs are kept between runs, one per requirements.txt (by its hash).
VENV_CACHE = Path(tempfile.gettempdir()) / "churn-retrain-model-venvs"
#: What MLflow, scikit-learn and pickle say when the environment is not the model's own.
VERSION_WARNINGS = re.compile(
    r"mismatch|InconsistentVersionWarning|Trying to unpickle|differs from the version",
    re.IGNORECASE,
)

#: Runs in the clean virtualenv: argv = CSV, output JSON. Scores the raw rows, the blank
#: TotalCharges in each spelling a client may send, and a bad row (its error is recorded).
_SCORE_SCRIPT = """
import json, sys
import numpy as np, pandas as pd, mlflow
try:
    import tasks
    project_importable = True
except ImportError:
    project_importable = False
model = mlflow.pyfunc.load_model("models:/telco-churn@champion")
rows = pd.read_csv(sys.argv[1]).drop(columns=["Churn"])
out = {"project_importable": project_importable}
out["raw"] = model.predict(rows)["churn_probability"].tolist()
blank = rows["TotalCharges"].str.strip() == ""
for name, value in {"empty": "", "none": None, "nan": np.nan}.items():
    variant = rows[blank].copy()
    variant["TotalCharges"] = variant["TotalCharges"].astype(object)
    variant.loc[:, "TotalCharges"] = [value] * len(variant)
    out[name] = model.predict(variant)["churn_probability"].tolist()
numeric = rows.assign(TotalCharges=pd.to_numeric(rows["TotalCharges"], errors="coerce"))
out["numeric"] = model.predict(numeric)["churn_probability"].tolist()
bad = rows.head(20).copy()
bad["tenure"] = bad["tenure"].astype(object)
bad.loc[bad.index[3], "tenure"] = "twelve"
try:
    model.predict(bad)
    out["bad_error"] = None
except Exception as exc:
    out["bad_error"] = f"{type(exc).__name__}: {exc}"
with open(sys.argv[2], "w") as f:
    json.dump(out, f)
"""


@dataclass(frozen=True)
class Portable:
    """The registered champion and a clean virtualenv made from its requirements."""

    tracking_uri: str
    csv: Path  # the public Telco CSV, as read by a client
    requirements: Path
    venv: Path
    #: The champion loaded in this (project) process, for comparing scores.
    model: Any

    def env(self) -> dict[str, str]:
        """An environment with no project code, no PyCaret logging path, the venv first."""
        keep = {
            k: v
            for k, v in clean_env().items()
            if not k.startswith(("PYCARET_", "PYTHON", "VIRTUAL_ENV", "UV_", "CONDA"))
        }
        path = [p for p in keep.get("PATH", "").split(os.pathsep) if not p.startswith(str(PROJECT))]
        return {
            **keep,
            "PATH": os.pathsep.join([str(self.venv / "bin"), *path]),
            "PYTHONPATH": "",
            "PYTHONNOUSERSITE": "1",
            "MLFLOW_TRACKING_URI": self.tracking_uri,
        }


@pytest.fixture(scope="module")
def portable(tmp_path_factory: pytest.TempPathFactory, real_csv: Path) -> Iterator[Portable]:
    """Train a small challenger through the retrain flow; it becomes the first champion.

    As `state_home` does, but once for the module: a fresh CHURN_RETRAIN_HOME with local
    MLflow, no tracking settings or credentials from the developer's shell or `.env`.
    """
    home = tmp_path_factory.mktemp("portable") / "state"
    saved = dict(os.environ)
    with pytest.MonkeyPatch.context() as patch:
        for name in [
            k for k in os.environ if k.startswith(("MLFLOW_", "CHURN_RETRAIN_", "DAGSHUB_"))
        ]:
            patch.delenv(name)
        patch.setenv("CHURN_RETRAIN_HOME", str(home))
        patch.setitem(Settings.model_config, "env_file", None)
        try:
            record = retrain(
                RetrainParameters(
                    period="2026-01", data="generated", models=["lr"], folds=2, generated_rows=1500
                )
            )
            assert record.promoted and record.champion_version_after == "1"
            tracking_uri = mlflow.get_tracking_uri()
            assert tracking_uri.startswith("sqlite:") and str(home) in tracking_uri
            requirements = Path(mlflow.pyfunc.get_model_dependencies(MODEL_URI))
            model = mlflow.pyfunc.load_model(MODEL_URI)
            yield Portable(tracking_uri, real_csv, requirements, _clean_venv(requirements), model)
        finally:
            for name in set(os.environ) - set(saved):
                del os.environ[name]
            os.environ.update(saved)


def _clean_venv(requirements: Path) -> Path:
    """A virtualenv with exactly `requirements`, built once per requirements hash."""
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is needed to build the clean virtualenv (https://docs.astral.sh/uv/)")
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    venv = VENV_CACHE / digest
    ready = venv / "READY"
    VENV_CACHE.mkdir(parents=True, exist_ok=True)
    with (VENV_CACHE / f"{digest}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another pytest process may be building the same one
        if ready.is_file():
            return venv
        shutil.rmtree(venv, ignore_errors=True)  # a build that was interrupted
        # Outside the checkout, with no uv config, so nothing of the project's settings applies.
        uv_env = {k: v for k, v in clean_env().items() if not k.startswith(("VIRTUAL_ENV", "UV_"))}
        for args, timeout in (
            (["venv", "--quiet", "--python", sys.executable, str(venv)], 120),
            (
                [
                    "pip",
                    "install",
                    "--quiet",
                    "--compile-bytecode",
                    *("--python", str(venv / "bin" / "python")),
                    *("-r", str(requirements)),
                ],
                1200,
            ),
        ):
            done = subprocess.run(
                [uv, "--no-config", *args],
                cwd=VENV_CACHE,
                env=uv_env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
            assert done.returncode == 0, f"uv {args[0]} failed:\n{done.stderr[-3000:]}"
        ready.write_text(requirements.read_text())
    return venv


def _raw_rows(csv: Path) -> pd.DataFrame:
    """The public CSV as read, target dropped: TotalCharges is text, " " in 11 rows."""
    rows = pd.read_csv(csv).drop(columns=["Churn"])
    assert (rows["TotalCharges"].str.strip() == "").sum() == 11
    return rows


def _customer_ids(text: str, rows: pd.DataFrame) -> list[str]:
    return [cid for cid in rows["customerID"] if cid in text]


def test_requirements_pin_the_whole_environment(portable: Portable) -> None:
    pins = portable.requirements.read_text().split()
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+==[^=\s]+", pin) for pin in pins), pins
    names = {pin.split("==")[0].lower().replace("_", "-") for pin in pins}
    # The model's own packages, and the indirect ones its pickle and server import.
    direct = {"pycaret", "scikit-learn", "pandas", "numpy", "cloudpickle", "mlflow", "lightgbm"}
    assert direct | {"scipy", "joblib", "category-encoders", "uvicorn", "graphene"} <= names


def test_loads_and_scores_raw_rows_in_a_clean_virtualenv(
    portable: Portable, tmp_path: Path
) -> None:
    cwd = tmp_path / "caller"
    cwd.mkdir()
    result = tmp_path / "scores.json"
    done = subprocess.run(
        [
            str(portable.venv / "bin" / "python"),
            "-c",
            _SCORE_SCRIPT,
            str(portable.csv),
            str(result),
        ],
        cwd=cwd,
        env=portable.env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(result.read_text())
    assert out["project_importable"] is False
    assert list(cwd.iterdir()) == []  # no logs.log, nothing at all
    assert not VERSION_WARNINGS.search(done.stderr), done.stderr[-3000:]

    rows = _raw_rows(portable.csv)
    raw = np.asarray(out["raw"])
    assert len(raw) == len(rows) and ((raw >= 0) & (raw <= 1)).all()
    # The same scores as the project's own process gives.
    ours = portable.model.predict(rows)["churn_probability"].to_numpy()
    assert raw == pytest.approx(ours)
    # A blank TotalCharges scores the same however it is spelled; so do numbers as numbers.
    blank = (rows["TotalCharges"].str.strip() == "").to_numpy()
    for spelling in ("empty", "none", "nan"):
        assert out[spelling] == pytest.approx(raw[blank].tolist()), spelling
    assert out["numeric"] == pytest.approx(raw.tolist())

    assert out["bad_error"] is not None and "tenure" in out["bad_error"]
    assert _customer_ids(out["bad_error"], rows) == []
    assert _customer_ids(done.stderr, rows) == []


def _post(port: int, payload: dict[str, Any]) -> tuple[int, str]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/invocations",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _split(rows: pd.DataFrame) -> dict[str, Any]:
    return {"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}


def test_served_from_a_clean_virtualenv(portable: Portable, tmp_path: Path) -> None:
    cwd = tmp_path / "server"
    cwd.mkdir()
    log = tmp_path / "serve.log"
    port = free_port()
    server = start(
        [
            str(portable.venv / "bin" / "mlflow"),
            *("models", "serve", "-m", MODEL_URI, "--env-manager", "local"),
            *("--host", "127.0.0.1", "-p", str(port)),
        ],
        env=portable.env(),
        log=log,
        cwd=cwd,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/ping", timeout=180, process=server, log=log)
        rows = _raw_rows(portable.csv)
        ours = portable.model.predict(rows)["churn_probability"].to_numpy()

        status, body = _post(port, _split(rows))  # TotalCharges as sent in the CSV: " "
        assert status == 200, body[:2000]
        served = pd.DataFrame(json.loads(body)["predictions"])
        assert len(served) == len(rows) and served["churn_probability"].between(0, 1).all()
        assert served["churn_probability"].to_numpy() == pytest.approx(ours)
        assert set(served["churn_prediction"]) <= {"Yes", "No"}

        # Numbers as JSON numbers, a blank as null.
        numeric = rows.assign(TotalCharges=pd.to_numeric(rows["TotalCharges"], errors="coerce"))
        status, body = _post(port, _split(numeric.head(500)))
        assert status == 200, body[:2000]
        assert pd.DataFrame(json.loads(body)["predictions"])[
            "churn_probability"
        ].to_numpy() == pytest.approx(ours[:500])

        bad = rows.head(50).astype({"tenure": object})
        bad.loc[bad.index[7], "tenure"] = "twelve"
        status, body = _post(port, _split(bad))
        assert status == 400 and "tenure" in body, body[:2000]
        assert _customer_ids(body, rows) == []

        status, body = _post(port, _split(rows.head(50).drop(columns=["Contract"])))
        assert status == 400 and "Contract" in body, body[:2000]
        assert _customer_ids(body, rows) == []
    finally:
        stop(server)
    text = log.read_text()
    assert list(cwd.iterdir()) == []  # no logs.log in the server's directory
    assert not VERSION_WARNINGS.search(text), text[-3000:]
    assert _customer_ids(text, rows) == []
