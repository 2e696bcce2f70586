"""The monthly retrain: validate, train a challenger, compare with the champion, promote the winner."""

from __future__ import annotations

from prefect import flow, get_run_logger, runtime

from flows.parameters import RetrainParameters
from tasks.alerts.approval import await_approval, request_approval
from tasks.alerts.hook import alert_on_failure
from tasks.alerts.notices import tell_a_person
from tasks.data.request import current_period
from tasks.decision.approval import apply_approval
from tasks.decision.compare import compare_with_champion
from tasks.decision.health import champion_health
from tasks.decision.record import DecisionRecord, Outcome, build_record
from tasks.decision.rule import FITNESS_METRIC
from tasks.decision.verdict import hold_if_already_promoted
from tasks.gate.admit import admit_snapshot
from tasks.gate.drift import log_reference_profile
from tasks.gate.report import log_gate_report
from tasks.logs import keep_expected_failures_short
from tasks.registry.aliases import find_champion
from tasks.registry.champion import find_missing_champion, find_promotion_score, load_champion
from tasks.registry.events import announce_promotion
from tasks.registry.lock import ensure_promotion_lock
from tasks.registry.promote import plan_promotion, promote_or_mark
from tasks.registry.versions import find_period_promotion, idempotency_key, register_challenger
from tasks.report.publish import log_comparison_report, record_decision
from tasks.report.summary import summary
from tasks.settings import Settings
from tasks.steps import StageClock
from tasks.tracking.check import check_tracking
from tasks.tracking.models import log_challenger
from tasks.tracking.runs import RunRef, configure_tracking, finishing_run, open_run
from tasks.tracking.training_ids import load_training_ids, log_training_ids
from tasks.training.streamed import split_snapshot
from tasks.training.train import train_where_the_flow_runs


# Any failed (or crashed) run alerts; the hook never raises, so the state stays Failed.
@flow(name="retrain", log_prints=True, on_failure=[alert_on_failure], on_crashed=[alert_on_failure])
def retrain(params: RetrainParameters = RetrainParameters()) -> DecisionRecord:  # noqa: B008
    """Retrain the churn model for one month and promote the challenger if it wins."""
    keep_expected_failures_short()  # a named failure is logged as its message, no traceback
    settings, clock = Settings(), StageClock()
    target, rule = params.model.resolve(settings), params.rule
    # A scheduled run works on the month it was scheduled for, even if it starts late.
    period = params.period or current_period(runtime.flow_run.scheduled_start_time)
    check_tracking(settings, target)  # server answers, registry can promote: before training
    tracking = configure_tracking(settings, target)
    name, key = target.model, idempotency_key(target.model, period)
    # The gate: a rejection raises SnapshotRejected before any MLflow run exists.
    request = params.snapshot_request(period)
    admitted = admit_snapshot(request, settings, params.drift_gate, target=target, clock=clock)
    snapshot = admitted.snapshot
    run_id = open_run(
        tracking,
        run_name=f"retrain-{period}",
        params={**params.run_params(), **snapshot.run_params()},
        tags={"data.digest": snapshot.digest, "prefect.flow_run_id": str(runtime.flow_run.id)},
    )
    run = RunRef.in_this_flow_run(tracking, run_id, period, rule, params.seed)
    with finishing_run(run.run_id):
        log_gate_report(run.run_id, admitted.gate)
        ensure_promotion_lock(name, create=params.create_promotion_lock)
        # The champion is found first: the holdout must avoid its training customers.
        champion = find_champion(name)
        ids = load_training_ids(champion.run_id) if champion else None
        with clock("sample"):  # a streamed month: its second pass
            month = split_snapshot(snapshot, ids, params.split_options())
        with clock("train"):  # here, or on the flow's Dask cluster when it has one
            challenger = train_where_the_flow_runs(month.training.frame, params.training_options())
            log_reference_profile(run.run_id, month.training.frame)  # next month's drift base
        with clock("compare"):
            comparison = compare_with_champion(
                challenger.model,
                load_champion(champion) if champion else None,
                month.holdout,
                rule,
                seed=params.seed,
                champion_problem=None if champion else find_missing_champion(name),
                population=snapshot.rows,
            )
            decision = hold_if_already_promoted(
                comparison.decision, find_period_promotion(name, key)
            )
            promoted_at = find_promotion_score(champion, FITNESS_METRIC)
            health = champion_health(comparison, champion, promoted_at, rule)
        with clock("promote"):
            ids_digest = log_training_ids(run.run_id, month.training.frame)
            model_uri = log_challenger(run.run_id, challenger)
            version = register_challenger(
                model_uri,
                name,
                run_id=run.run_id,
                period=period,
                verdict=decision.verdict,
                training_ids_digest=ids_digest,
                data_digest=snapshot.digest,
                key=key,
                campaign=rule.campaign.model_dump_json(),
            )
            before = champion.version if champion else None
        approval = None
        if decision.promote and params.approval.required:
            # Nothing is held while a person decides; the promotion re-reads the champion.
            with clock("approve"):
                request_approval(decision, settings, run, version=version, policy=params.approval)
                approval = await_approval(params.approval, flow_run_id=run.flow_run_id)
                decision = apply_approval(decision, approval)
        with clock("report"):
            artifacts = log_comparison_report(run, comparison, version, champion, health, decision)
        # What a promotion leaves is written first; the move (undone if it fails) comes last.
        parts = (run, admitted, month, challenger, champion, comparison)
        planned = plan_promotion(name, version, decision, before=before, run_id=run.run_id)
        draft = Outcome(
            decision, None, approval, health, artifacts, ids_digest, version, clock.seconds
        )
        record_decision(record := build_record(*parts, draft.settled(decision, planned, before)))
        with clock("promote"):
            promotion = promote_or_mark(
                name, version, decision, before=before, run_id=run.run_id, planned=planned
            )
        if promotion != planned:  # refused: recorded as what happened instead
            record_decision(
                record := build_record(*parts, draft.settled(decision, promotion, before))
            )
        # Only a move is announced (never a tie or a refusal): it re-scores the base.
        announce_promotion(name, promotion, period=period, verdict=decision.verdict)
    # The Prefect UI's log of the run ends with what the CLI prints.
    get_run_logger().info("%s", summary(record))
    # Decay alerts; a champion below the floor that stays fails the run (exit 7); decisions on request.
    tell_a_person(record, settings, flow_run_name=run.flow_run_name, flow_run_url=run.flow_run_url)
    return record
