import type { FastifyReply, FastifyRequest } from "fastify";
import { problemType, type ProblemSlug } from "../jobs/problems.js";
import type { JobRecord } from "../store/store.js";
import { PROBLEM_JSON, ProblemError, instanceOf, problemBody, sendProblem } from "./problems.js";
import type { ServerDeps } from "./server.js";
import { jobPath, origin } from "./urls.js";

const SLUG_FROM_TYPE = (type: string) => type.slice(type.lastIndexOf("/") + 1);

/**
 * Answer as the result resource does for a job of the caller's: 200/201/204 with the result,
 * the persisted problem for a failed, canceled or timed-out job, 202 while pending, 410 once
 * retention took the result. Shared by `/result`, `onComplete=stream` and waits.
 */
export async function sendResult(
  request: FastifyRequest,
  reply: FastifyReply,
  job: JobRecord,
  deps: ServerDeps,
  options: { contentLocation?: boolean } = {},
): Promise<FastifyReply> {
  const base = origin(request, deps.config);
  reply.header("cache-control", "no-store");
  if (options.contentLocation) reply.header("content-location", `${base}${jobPath(job.id)}`);

  if (job.status === "queued" || job.status === "running") {
    return reply
      .code(202)
      .header("location", `${base}${jobPath(job.id)}`)
      .header("retry-after", String(deps.estimator.seconds(job, deps.now())))
      .send({ id: job.id, status: job.status });
  }
  if (job.resultPurged) {
    return sendProblem(
      reply,
      new ProblemError("result-gone", "the result was removed by the retention policy"),
    );
  }
  if (job.status !== "succeeded") {
    const error = job.error ?? {
      type: problemType("job-failed"),
      title: "The job failed",
      status: 500,
      detail: "",
    };
    const slug = SLUG_FROM_TYPE(error.type) as ProblemSlug;
    const body = {
      ...problemBody(slug, error.detail, instanceOf(request)),
      ...error,
      instance: instanceOf(request),
      error: { code: slug, message: error.detail },
    };
    return reply.code(error.status).header("content-type", PROBLEM_JSON).send(JSON.stringify(body));
  }

  const result = await deps.store.getResult({ tenantId: job.tenantId, id: job.id });
  if (!result)
    return sendProblem(reply, new ProblemError("result-gone", "the result is no longer available"));
  if (result.kind === "none") return reply.code(204).send();
  if (result.kind === "created") reply.code(201).header("location", result.location ?? "");
  else reply.code(200);
  reply.header("content-type", result.contentType ?? "application/octet-stream");
  reply.header("content-length", String(result.size));
  if (result.data)
    return reply.send(Buffer.from(result.data.buffer, result.data.byteOffset, result.data.byteLength));
  return reply.send(result.open!());
}
