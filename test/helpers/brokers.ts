/**
 * The machine's real brokers for the bridge tests (`--events`): NATS with JetStream at
 * 127.0.0.1:4222 and RabbitMQ at 127.0.0.1:5672, their raw clients for a test's own
 * publishing and reading, and the commands that stop and start each (RELIABILITY.md's broker
 * outage). `.ci/run` starts a broker that is down.
 */
import { execFileSync, execSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { connect as amqpConnect } from "amqplib";
import { connect as natsConnect, headers as natsHeaders } from "nats";

export const NATS_URL = process.env.TESSERA_TEST_NATS_URL ?? "nats://127.0.0.1:4222";
export const AMQP_URL = process.env.TESSERA_TEST_AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672";

export type BrokerKind = "nats" | "amqp";
export const BROKERS: readonly { kind: BrokerKind; url: string }[] = [
  { kind: "nats", url: NATS_URL },
  { kind: "amqp", url: AMQP_URL },
];

/** A name no other test (or earlier run) uses: groups, event types. */
export function unique(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}

/** Publish `body` on `subject` as an outsider would (no Tessera relay, no hash header). */
export async function publishRaw(
  kind: BrokerKind,
  subject: string,
  body: unknown,
  id: string,
): Promise<void> {
  const data = Buffer.from(typeof body === "string" ? body : JSON.stringify(body));
  if (kind === "nats") {
    const nc = await natsConnect({ servers: NATS_URL.replace("nats://", "") });
    try {
      const h = natsHeaders();
      await nc.jetstream().publish(subject, data, { msgID: id, headers: h });
    } finally {
      await nc.drain();
    }
    return;
  }
  const model = await amqpConnect(AMQP_URL);
  try {
    const channel = await model.createConfirmChannel();
    await channel.assertExchange("tessera.events", "topic", { durable: true });
    await new Promise<void>((resolve, reject) =>
      channel.publish(
        "tessera.events",
        subject,
        data,
        { persistent: true, messageId: id },
        (error: unknown) => (error ? reject(error as Error) : resolve()),
      ),
    );
  } finally {
    await model.close();
  }
}

/** The bodies a group's dead-letter queue (RabbitMQ) or subject (NATS) holds. */
export async function deadLetters(kind: BrokerKind, group: string): Promise<string[]> {
  if (kind === "nats") {
    const nc = await natsConnect({ servers: NATS_URL.replace("nats://", "") });
    try {
      const jsm = await nc.jetstreamManager();
      const bodies: string[] = [];
      const info = await jsm.streams.info("TESSERA_DEAD_LETTERS");
      for (let seq = info.state.first_seq; seq <= info.state.last_seq && seq > 0; seq++) {
        const m = await jsm.streams.getMessage("TESSERA_DEAD_LETTERS", { seq }).catch(() => null);
        if (m && m.subject === `tessera-dead-letter.${group}`) bodies.push(Buffer.from(m.data).toString());
      }
      return bodies;
    } finally {
      await nc.drain();
    }
  }
  const model = await amqpConnect(AMQP_URL);
  try {
    const channel = await model.createChannel();
    const bodies: string[] = [];
    for (;;) {
      const m = await channel.get(`tessera.${group}.dead-letter`, { noAck: true });
      if (m === false) return bodies;
      bodies.push(m.content.toString());
    }
  } finally {
    await model.close();
  }
}

/**
 * Remove a group's durable consumer (NATS) or queues (RabbitMQ) once no node of it runs: a
 * group left behind on a known event type would keep every later run's events.
 */
export async function dropGroup(kind: BrokerKind, group: string): Promise<void> {
  if (kind === "nats") {
    const nc = await natsConnect({ servers: NATS_URL.replace("nats://", "") });
    try {
      const jsm = await nc.jetstreamManager();
      await jsm.consumers.delete("TESSERA_EVENTS", group).catch(() => undefined);
    } finally {
      await nc.drain();
    }
    return;
  }
  const model = await amqpConnect(AMQP_URL);
  try {
    const channel = await model.createChannel();
    await channel.deleteQueue(`tessera.${group}`);
    await channel.deleteQueue(`tessera.${group}.dead-letter`);
  } finally {
    await model.close();
  }
}

/** Stop the broker, wait `downMs`, start it again, and wait until it answers. */
export async function restartBroker(kind: BrokerKind, downMs: number): Promise<void> {
  if (kind === "nats") {
    execSync("pkill -x nats-server || true");
    await waitUntil(() => !running("nats-server"), 10_000);
    await sleep(downMs);
    execSync(
      "start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log",
    );
    await waitUntil(async () => {
      try {
        const nc = await natsConnect({ servers: NATS_URL.replace("nats://", ""), timeout: 500 });
        await (await nc.jetstreamManager()).streams.info("TESSERA_EVENTS");
        await nc.close();
        return true;
      } catch {
        return false;
      }
    }, 30_000);
    return;
  }
  execFileSync("rabbitmqctl", ["stop_app"], { stdio: "ignore" });
  await sleep(downMs);
  execFileSync("rabbitmqctl", ["start_app"], { stdio: "ignore" });
  execFileSync("rabbitmqctl", ["await_startup"], { stdio: "ignore" });
}

function running(name: string): boolean {
  try {
    execFileSync("pgrep", ["-x", name], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error("timed out waiting for the broker");
    await sleep(100);
  }
}
