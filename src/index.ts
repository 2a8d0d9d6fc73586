/** Tessera's public library API. */
export { createTessera, DEV_TENANT, type Tessera, type TesseraOptions } from "./tessera.js";
export {
  defineJob,
  type DefineJobOptions,
  type JobContext,
  type JobDefinition,
  type JobInput,
  type JobOutput,
  type JobLogger,
  type JsonSchema,
} from "./jobs/define.js";
export { JobError, TesseraError, JobAbortedError, type AbortCause, type JobProblem } from "./jobs/errors.js";
export {
  bytesResult,
  createdResult,
  fileResult,
  BytesResult,
  CreatedResult,
  FileResult,
} from "./jobs/result.js";
export {
  defineCommandJob,
  isCommandJob,
  type CommandJobDefinition,
  type DefineCommandJobOptions,
} from "./worker/command/define-command-job.js";
export { defineSaga, isSaga, type DefineSagaOptions, type SagaDefinition } from "./sagas/define-saga.js";
export type {
  CallTarget,
  EndpointTarget,
  SagaContext,
  StepContext,
  StepOptions,
  TesseraTarget,
} from "./sagas/saga-run.js";
export { JOB_STATUSES, isTerminal, type JobStatus } from "./jobs/states.js";
export { PROBLEMS, type ProblemSlug } from "./jobs/problems.js";
export { defaultConfig, loadConfig, OPTIONS, ConfigError, type Config } from "./config.js";
export type { Store, JobRecord, StoreEvent } from "./store/store.js";
export { SqliteStore, type SqliteStoreOptions } from "./store/sqlite/store.js";
export { demoJobs } from "./demo/jobs.js";
export { runJobOnce } from "./worker/testing.js";
