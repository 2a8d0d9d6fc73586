import type { FastifyRequest } from "fastify";
import type { Config } from "../config.js";

const HOST = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/;

/**
 * The origin for absolute URLs in headers and bodies: the configured public URL, else the
 * request's Host (and X-Forwarded-* only when proxies are trusted). Set `--public-url` in
 * production: then a forged Host can never redirect a capability URL elsewhere.
 */
export function origin(request: FastifyRequest, config: Config): string {
  if (config.publicUrl) return config.publicUrl;
  const host = request.host;
  const safeHost = typeof host === "string" && HOST.test(host) ? host : "localhost";
  const protocol = request.protocol === "https" ? "https" : "http";
  return `${protocol}://${safeHost}`;
}

export const jobPath = (id: string) => `/v1/jobs/${id}`;
export const resultPath = (id: string) => `/v1/jobs/${id}/result`;
export const cancelPath = (id: string) => `/v1/jobs/${id}/cancel`;
