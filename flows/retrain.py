"""The monthly retrain: validate, train a challenger, compare with the champion, promote the winner."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from prefect import flow, runtime

from flows.parameters import RetrainParameters
from tasks.alerts.hook import alert_on_failure
from tasks.data.request import current_period
from tasks.data.snapshot import load_snapshot
from tasks.decision.compare import compare_with_champion
from tasks.decision.holdout import load_training_ids, log_training_ids, split_fair_holdout
from tasks.decision.publish import log_comparison_report, record_decision
from tasks.decision.record import DecisionRecord, ModelScores
from tasks.decision.verdict import hold_if_already_promoted, settle_decision
from tasks.gate.drift import check_drift, find_reference_profile, log_reference_profile
from tasks.gate.report import log_gate_report, reporting_gate
from tasks.gate.suite import validate_snapshot
from tasks.registry.aliases import find_champion
from tasks.registry.champion import find_missing_champion, load_champion
from tasks.registry.lock import ensure_promotion_lock
from tasks.registry.promote import promote_challenger
from tasks.registry.versions import (
    IDEMPOTENCY_TAG,
    PROMOTED_TAG,
    find_period_promotion,
    idempotency_key,
    mark_not_promoted,
    register_challenger,
)
from tasks.settings import Settings
from tasks.tracking.check import check_tracking
from tasks.tracking.models import log_challenger
from tasks.tracking.runs import configure_tracking, finishing_run, open_run
from tasks.training.train import train_challenger


class _StageClock:
    """Wall time per stage, for the decision record and the benchmarks."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = round(time.perf_counter() - started, 3)


# Any failed (or crashed) run alerts; the hook never raises, so the state stays Failed.
@flow(
    name="retrain",
    log_prints=True,
    on_failure=[alert_on_failure],
    on_crashed=[alert_on_failure],
)
def retrain(params: RetrainParameters = RetrainParameters()) -> DecisionRecord:  # noqa: B008
    """Retrain the churn model for one month and promote the challenger if it wins."""
    settings = Settings()
    # A scheduled run works on the month it was scheduled for, even if it starts late.
    period = params.period or current_period(runtime.flow_run.scheduled_start_time)
    clock = _StageClock()

    check_tracking(settings)  # server answers, registry can promote: fails fast, before training
    tracking = configure_tracking(settings)
    # The gate: parse guards, the expectation suite, drift. A rejection raises SnapshotRejected
    # before any MLflow run exists; the report is written either way.
    with reporting_gate(settings, period) as gate:
        with clock("load"):
            snapshot = load_snapshot(
                params.data,
                period=period,
                seed=params.seed,
                generated_rows=params.generated_rows,
                drift=params.drift,
                scenario=params.scenario,
                max_bytes=settings.max_snapshot_bytes,
            )
        gate.source = snapshot.source
        with clock("validate"):
            validation = gate.record(validate_snapshot(snapshot.frame, source=snapshot.source))
            drift = gate.record(
                check_drift(
                    snapshot.frame,
                    find_reference_profile(settings),
                    params.drift_gate,
                    source=snapshot.source,
                )
            )

    run_id = open_run(
        tracking,
        run_name=f"retrain-{period}",
        params={
            **params.model_dump(exclude={"rule", "data"}),
            **{f"rule.{k}": v for k, v in params.rule.model_dump().items()},
            "period": period,
            "data.source": snapshot.source,
            "data.rows": snapshot.rows,
        },
        tags={"data.digest": snapshot.digest, "prefect.flow_run_id": str(runtime.flow_run.id)},
    )
    with finishing_run(run_id):
        log_gate_report(run_id, gate)
        ensure_promotion_lock(tracking.model_name, create=params.create_promotion_lock)
        # The champion is found before the split: the holdout must avoid its training customers.
        champion = find_champion(tracking.model_name)
        champion_problem = None if champion else find_missing_champion(tracking.model_name)
        champion_ids = load_training_ids(champion.run_id) if champion else None
        split = split_fair_holdout(
            snapshot.frame,
            fraction=params.holdout_fraction,
            seed=params.seed,
            champion_ids=champion_ids.hashes if champion_ids else None,
            champion_ids_digest=champion_ids.digest if champion_ids else None,
            ids_unknown_reason=champion_ids.problem if champion_ids else None,
        )
        train, holdout = split.train, split.holdout
        with clock("train"):
            # Submitted, not called: under a DaskTaskRunner it trains on the cluster.
            challenger = train_challenger.submit(
                train,
                seed=params.seed,
                models=params.models,
                folds=params.folds,
                budget_minutes=params.budget_minutes,
                distributed=params.distributed_training,
            ).result()
            log_reference_profile(run_id, train)  # next month's drift is measured against it
        with clock("compare"):
            loaded = load_champion(champion) if champion else None
            comparison = compare_with_champion(
                challenger.model,
                loaded.model if loaded else None,
                holdout,
                params.rule,
                seed=params.seed,
                champion_problem=champion_problem or (loaded.problem if loaded else None),
            )
            key = idempotency_key(tracking.model_name, period)
            decision = hold_if_already_promoted(
                comparison.decision, find_period_promotion(tracking.model_name, key)
            )
        with clock("promote"):
            model_uri = log_challenger(run_id, challenger)
            ids_digest = log_training_ids(run_id, train)
            version = register_challenger(
                model_uri,
                tracking.model_name,
                tags={
                    "verdict": decision.verdict,
                    "period": period,
                    "data.digest": snapshot.digest,
                    IDEMPOTENCY_TAG: key,
                    PROMOTED_TAG: "false",
                    "training_ids.digest": ids_digest,
                },
            )
            before = champion.version if champion else None
            promotion = None
            if decision.promote:
                promotion = promote_challenger(
                    tracking.model_name,
                    version,
                    expected_champion=before,
                    decision_run=run_id,
                    reason=f"{decision.verdict}: {decision.reason}",
                )
            else:
                mark_not_promoted(tracking.model_name, version, verdict=decision.verdict)
        verdict, promoted, reason, after = settle_decision(decision, promotion, before)
        with clock("report"):
            artifacts = log_comparison_report(
                run_id,
                comparison,
                challenger_label=f"challenger v{version}",
                champion_label=f"champion v{before}" if before else None,
                title=f"{tracking.model_name} {period}: {verdict}",
            )
        record = DecisionRecord(
            model_name=tracking.model_name,
            period=period,
            data_source=snapshot.source,
            data_digest=snapshot.digest,
            idempotency_key=key,
            rows=snapshot.rows,
            train_rows=len(train),
            holdout_rows=comparison.holdout_rows,
            validation=validation.summary(),
            drift=drift.summary(),
            seed=params.seed,
            rule=params.rule,
            challenger=ModelScores(
                version=version,
                run_id=run_id,
                algorithm=challenger.algorithm,
                holdout=comparison.challenger,
                cv=challenger.cv_metrics,
            ),
            champion=None
            if champion is None
            else ModelScores(
                version=champion.version, run_id=champion.run_id, holdout=comparison.champion or {}
            ),
            verdict=verdict,
            promoted=promoted,
            reason=reason,
            champion_version_after=after,
            mlflow_run_id=run_id,
            mlflow_run_url=tracking.run_url(run_id),
            champion_url=tracking.version_url(after) if after else None,
            tracking_uri=tracking.tracking_uri,
            flow_run_id=str(runtime.flow_run.id),
            decided_at=datetime.now(UTC).isoformat(timespec="seconds"),
            stage_seconds=clock.seconds,
            notes=list(challenger.notes),
            decision=decision,
            intervals=comparison.intervals,
            holdout_split=split.summary,
            champion_problem=comparison.champion_problem,
            promotion=promotion,
            training_ids_digest=ids_digest,
            report_artifacts=artifacts,
        )
        record_decision(record)
    return record
