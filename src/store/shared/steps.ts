/** A saga journal's rows as both drivers keep them (times as epoch ms, JSON as text). */
import type { JobProblem } from "../../jobs/errors.js";
import type { SagaEvent, StepKind, StepRecord, StepStatus } from "../store.js";

export interface StepRow {
  seq: number;
  name: string;
  status: StepStatus;
  attempts: number;
  started_at: number;
  finished_at: number | null;
  result: string | null;
  error: string | null;
  compensated_at: number | null;
  compensation_error: string | null;
  kind: StepKind;
}

export const STEP_COLUMNS = `seq, name, status, attempts, started_at, finished_at, result, error, compensated_at,
  compensation_error, kind`;

export function toStep(row: StepRow): StepRecord {
  return {
    seq: row.seq,
    name: row.name,
    kind: row.kind,
    status: row.status,
    attempts: row.attempts,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    result: row.result === null ? null : (JSON.parse(row.result) as unknown),
    error: row.error === null ? null : (JSON.parse(row.error) as JobProblem),
    compensatedAt: row.compensated_at,
    compensationError:
      row.compensation_error === null ? null : (JSON.parse(row.compensation_error) as JobProblem),
  };
}

/** A step's columns after its job id and seq, in STEP_COLUMNS order, JSON serialized. */
export function stepValues(step: StepRecord): unknown[] {
  return [
    step.name,
    step.status,
    step.attempts,
    step.startedAt,
    step.finishedAt,
    step.result === undefined ? null : JSON.stringify(step.result),
    step.error === null ? null : JSON.stringify(step.error),
    step.compensatedAt,
    step.compensationError === null ? null : JSON.stringify(step.compensationError),
    step.kind,
  ];
}

export interface EventRow {
  event_id: string;
  data: string;
  received_at: number;
}

export function toEvent(row: EventRow): SagaEvent {
  return { eventId: row.event_id, data: JSON.parse(row.data) as unknown, receivedAt: row.received_at };
}

/** What a delivery found: a duplicate of the kept event, or another one of that name. */
export function repeatOf(kept: string, eventId: string): "duplicate" | "conflict" {
  return kept === eventId ? "duplicate" : "conflict";
}
