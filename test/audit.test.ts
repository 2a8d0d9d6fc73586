import { describe, expect, it } from "vitest";
import { AuditLog, candidatePrefix } from "../src/audit.js";
import { captureLogger } from "./helpers/log-capture.js";

describe("AuditLog", () => {
  it("writes one line per event with audit: true, the event and the given fields", () => {
    const { logger, lines } = captureLogger();
    const audit = new AuditLog(logger);
    audit.record("job.canceled", {
      tenant: "t-1",
      keyPrefix: "tsk_abcdefgh",
      address: "10.0.0.1",
      requestId: "req-1",
      job: "j-1",
    });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      audit: true,
      event: "job.canceled",
      tenant: "t-1",
      keyPrefix: "tsk_abcdefgh",
      address: "10.0.0.1",
      requestId: "req-1",
      job: "j-1",
      msg: "job.canceled",
      level: 30,
    });
  });

  it("never writes more than 12 characters of a key, and drops absent fields", () => {
    const { logger, lines } = captureLogger();
    const key = "tsk_" + "x".repeat(49);
    new AuditLog(logger).record("key.rotated", { keyPrefix: key, newKeyPrefix: key, tenant: null });
    expect(lines[0]!.keyPrefix).toBe(key.slice(0, 12));
    expect(lines[0]!.newKeyPrefix).toBe(key.slice(0, 12));
    expect(lines[0]).not.toHaveProperty("tenant");
    expect(JSON.stringify(lines)).not.toContain(key);
  });

  it("writes at info even when the log level is warn; silent turns it off", () => {
    const warn = captureLogger("warn");
    new AuditLog(warn.logger).record("key.revoked", {});
    warn.logger.info("not an audit line");
    expect(warn.lines.map((l) => l.event)).toEqual(["key.revoked"]);
    const silent = captureLogger("silent");
    new AuditLog(silent.logger).record("key.revoked", {});
    expect(silent.lines).toEqual([]);
  });

  it("caps auth-failure lines per address per second and counts the suppressed ones", () => {
    const { logger, lines } = captureLogger();
    let now = 1_000_000;
    const audit = new AuditLog(logger, {
      failuresPerSecond: 3,
      failuresPerSecondTotal: 1000,
      now: () => now,
    });
    for (let i = 0; i < 50; i++) audit.authFailed({ reason: "unknown", address: "198.51.100.7" });
    audit.authFailed({ reason: "malformed", address: "198.51.100.8" }); // another address is not held back
    expect(lines.filter((l) => l.address === "198.51.100.7")).toHaveLength(3);
    expect(lines.filter((l) => l.address === "198.51.100.8")).toHaveLength(1);
    now += 1000;
    audit.authFailed({ reason: "unknown", address: "198.51.100.7" });
    expect(lines.at(-1)).toMatchObject({ event: "auth.failed", address: "198.51.100.7", suppressed: 47 });
    audit.authFailed({ reason: "unknown", address: "198.51.100.7" });
    expect(lines.at(-1)).not.toHaveProperty("suppressed");
  });

  it("caps auth-failure lines over all addresses too", () => {
    const { logger, lines } = captureLogger();
    const now = 5_000_000;
    const audit = new AuditLog(logger, { failuresPerSecond: 10, failuresPerSecondTotal: 20, now: () => now });
    for (let i = 0; i < 1000; i++) audit.authFailed({ reason: "unknown", address: `203.0.113.${i % 250}` });
    expect(lines).toHaveLength(20);
  });

  it("candidatePrefix keeps at most 12 characters of a tsk_ candidate, nothing of anything else", () => {
    expect(candidatePrefix("tsk_abcdefghijklmnop")).toBe("tsk_abcdefgh");
    expect(candidatePrefix("tsk_ab")).toBe("tsk_ab");
    expect(candidatePrefix("password123456")).toBeNull();
    expect(candidatePrefix("tsk_ab\ncd")).toBeNull();
    expect(candidatePrefix(undefined)).toBeNull();
  });
});
