"""The monthly retrain: validate, train a challenger, compare with the champion, promote the winner."""

from __future__ import annotations

from prefect import flow, get_run_logger, runtime

from flows.parameters import RetrainParameters
from tasks.alerts.hook import alert_on_failure, flow_run_url
from tasks.alerts.notices import request_approval, tell_a_person
from tasks.data.request import current_period
from tasks.data.schema import TARGET
from tasks.decision.approval import apply_approval, await_approval
from tasks.decision.compare import compare_with_champion
from tasks.decision.health import champion_health
from tasks.decision.holdout import (
    holdout_cap,
    load_training_ids,
    log_training_ids,
    split_fair_holdout,
)
from tasks.decision.publish import log_comparison_report, record_decision
from tasks.decision.record import DecisionRecord, build_record
from tasks.decision.rule import FITNESS_METRIC
from tasks.decision.verdict import hold_if_already_promoted, settle
from tasks.gate.admit import admit_snapshot
from tasks.gate.drift import log_reference_profile
from tasks.gate.report import log_gate_report
from tasks.logs import keep_expected_failures_short
from tasks.registry.aliases import find_champion
from tasks.registry.champion import find_missing_champion, find_promotion_score, load_champion
from tasks.registry.lock import ensure_promotion_lock
from tasks.registry.promote import promote_challenger
from tasks.registry.versions import (
    find_period_promotion,
    idempotency_key,
    mark_not_promoted,
    register_challenger,
)
from tasks.settings import Settings
from tasks.steps import StageClock
from tasks.tracking.check import check_tracking
from tasks.tracking.models import log_challenger
from tasks.tracking.runs import configure_tracking, finishing_run, open_run
from tasks.training.sample import sample_training_rows
from tasks.training.train import train_where_the_flow_runs


# Any failed (or crashed) run alerts; the hook never raises, so the state stays Failed.
@flow(name="retrain", log_prints=True, on_failure=[alert_on_failure], on_crashed=[alert_on_failure])
def retrain(params: RetrainParameters = RetrainParameters()) -> DecisionRecord:  # noqa: B008
    """Retrain the churn model for one month and promote the challenger if it wins."""
    keep_expected_failures_short()  # a named failure is logged as its message, no traceback
    settings, clock, flow_run_id = Settings(), StageClock(), str(runtime.flow_run.id)
    # A scheduled run works on the month it was scheduled for, even if it starts late.
    period = params.period or current_period(runtime.flow_run.scheduled_start_time)
    check_tracking(settings)  # server answers, registry can promote: fails fast, before training
    tracking = configure_tracking(settings)
    name, key = tracking.model_name, idempotency_key(tracking.model_name, period)
    # The gate: a rejection raises SnapshotRejected before any MLflow run exists.
    admitted = admit_snapshot(
        params.snapshot_request(period), settings, params.drift_gate, clock=clock
    )
    snapshot = admitted.snapshot
    run_id = open_run(
        tracking,
        run_name=f"retrain-{period}",
        params={**params.run_params(), **snapshot.run_params()},
        tags={"data.digest": snapshot.digest, "prefect.flow_run_id": flow_run_id},
    )
    with finishing_run(run_id):
        log_gate_report(run_id, admitted.gate)
        ensure_promotion_lock(name, create=params.create_promotion_lock)
        # Split: the champion is found first, as the holdout must avoid its training customers.
        champion = find_champion(name)
        ids = load_training_ids(champion.run_id) if champion else None
        split = split_fair_holdout(
            snapshot.frame, fraction=params.holdout_fraction, seed=params.seed, champion_ids=ids,
            max_rows=holdout_cap(params.rule, snapshot.frame[TARGET]),
        )  # fmt: skip
        # Over the cap, the challenger trains on a stratified sample; the holdout stays whole.
        training = sample_training_rows(
            snapshot.frame, positions=split.train_positions, max_rows=params.max_train_rows,
            seed=params.seed,
        )  # fmt: skip
        with clock("train"):  # here, or on the flow's Dask cluster when it has one
            challenger = train_where_the_flow_runs(
                training.frame,
                seed=params.seed,
                models=params.models,
                folds=params.folds,
                budget_minutes=params.budget_minutes,
                distributed=params.distributed_training,
            )
            log_reference_profile(run_id, training.frame)  # next month's drift is measured on it
        with clock("compare"):
            comparison = compare_with_champion(
                challenger.model,
                load_champion(champion) if champion else None,
                split.holdout,
                params.rule,
                seed=params.seed,
                champion_problem=None if champion else find_missing_champion(name),
                population=snapshot.rows,
            )
            decision = hold_if_already_promoted(
                comparison.decision, find_period_promotion(name, key)
            )
            promoted_at = find_promotion_score(champion, FITNESS_METRIC)
            health = champion_health(comparison, champion, promoted_at, params.rule)
        with clock("promote"):
            model_uri = log_challenger(run_id, challenger)
            ids_digest = log_training_ids(run_id, training.frame)
            version = register_challenger(
                model_uri, name, run_id=run_id, period=period, verdict=decision.verdict,
                training_ids_digest=ids_digest, data_digest=snapshot.digest, key=key,
                campaign=params.rule.campaign.model_dump_json(),
            )  # fmt: skip
            before = champion.version if champion else None
        approval = None
        if decision.promote and params.approval.required:
            # Nothing is held while a person decides; the promotion re-reads the champion.
            with clock("approve"):
                request_approval(
                    decision, settings, period=period, version=version,
                    mlflow_run_url=tracking.run_url(run_id), flow_run_name=str(runtime.flow_run.name),
                    flow_run_id=flow_run_id, flow_run_url=flow_run_url(), policy=params.approval,
                )  # fmt: skip
                approval = await_approval(params.approval, flow_run_id=flow_run_id)
                decision = apply_approval(decision, approval)
        with clock("promote"):
            promotion = None
            if decision.promote:
                promotion = promote_challenger(
                    name, version, expected_champion=before, decision_run=run_id,
                    reason=f"{decision.verdict}: {decision.reason}",
                )  # fmt: skip
            else:
                mark_not_promoted(name, version, verdict=decision.verdict)
        decision = settle(decision, promotion, champion_before=before)
        with clock("report"):
            artifacts = log_comparison_report(
                run_id, comparison, challenger_label=f"challenger v{version}",
                champion_label=f"champion v{before}" if before else None,
                title=f"{name} {period}: {decision.verdict}",
                champion=champion, period=period, health=health, rule=params.rule,
            )  # fmt: skip
        record = build_record(
            tracking=tracking, snapshot=snapshot, idempotency_key=key, split=split,
            validation=admitted.validation.summary(), drift=admitted.drift.summary(),
            rule=params.rule, seed=params.seed, run_id=run_id, challenger=challenger,
            version=version, champion=champion, comparison=comparison, decision=decision,
            promotion=promotion, training_ids_digest=ids_digest, report_artifacts=artifacts,
            flow_run_id=flow_run_id, stage_seconds=clock.seconds, champion_health=health,
            approval=approval, training_sample=training.summary,
        )  # fmt: skip
        record_decision(record)
    # The Prefect UI's log of the run ends with what the CLI prints.
    get_run_logger().info("%s", record.text())
    # Decay alerts; a champion below the floor that stays fails the run (exit 7); decisions on request.
    tell_a_person(
        record, settings, flow_run_name=str(runtime.flow_run.name), flow_run_url=flow_run_url()
    )
    return record
