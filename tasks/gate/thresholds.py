"""Drift thresholds (PSI) of the gate: a flow parameter."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Status = Literal["ok", "warn", "fail"]


class DriftThresholds(BaseModel):
    """When drift only warns and when it rejects the snapshot (PSI per column)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        default=True, description="Compare the snapshot with the champion's training data."
    )
    warn: float = Field(
        default=0.1, ge=0.0, le=10.0, description="PSI at or above which a column is reported."
    )
    fail: float = Field(
        default=0.25, ge=0.0, le=10.0, description="PSI at or above which the run is rejected."
    )

    @model_validator(mode="after")
    def ordered_failures(self) -> DriftThresholds:
        if self.fail < self.warn:
            raise ValueError(f"fail threshold {self.fail} is below warn threshold {self.warn}")
        return self

    def status(self, psi: float) -> Status:
        if psi >= self.fail:
            return "fail"
        return "warn" if psi >= self.warn else "ok"
