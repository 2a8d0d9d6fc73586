/** The broker an `--events` URL names. */
import type { Logger } from "pino";
import { AmqpBroker } from "./amqp.js";
import type { Broker } from "./broker.js";
import { NatsBroker } from "./nats.js";

export async function openBroker(url: string, logger: Logger): Promise<Broker> {
  const scheme = new URL(url).protocol;
  if (scheme === "nats:") return NatsBroker.open(url, logger);
  if (scheme === "amqp:" || scheme === "amqps:") return AmqpBroker.open(url, logger);
  throw new TypeError(`--events: no broker for ${scheme} (nats:// or amqp://)`);
}
