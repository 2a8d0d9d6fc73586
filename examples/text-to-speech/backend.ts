/**
 * A backend that needs speech, and does not wait for it: it submits the text to the speech
 * service with a callback URL, answers nothing until the service calls back, checks the
 * callback's Standard Webhooks signature, then downloads the WAV from the signed result URL.
 *
 *   WEBHOOK_SECRET=whsec_… TESSERA_URL=http://127.0.0.1:3000 \
 *     npx tsx examples/text-to-speech/backend.ts "Hello from Tessera" en speech.wav
 *
 * Environment: TESSERA_URL (default http://127.0.0.1:3000), TESSERA_API_KEY (not needed by a
 * --dev server), WEBHOOK_SECRET (`tessera webhooks secret --tenant NAME`; the dev tenant is
 * `dev`), CALLBACK_PORT (default 8080). Prints one JSON line; exits 0 when speech was saved.
 */
import { writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";
import { createClient } from "tessera/client";

const [text = "Hello from Tessera", voice = "en", out = "speech.wav"] = process.argv.slice(2);
const secret = process.env.WEBHOOK_SECRET;
if (!secret) throw new Error("WEBHOOK_SECRET is required (tessera webhooks secret --tenant NAME)");
const client = createClient({
  baseUrl: process.env.TESSERA_URL ?? "http://127.0.0.1:3000",
  ...(process.env.TESSERA_API_KEY ? { apiKey: process.env.TESSERA_API_KEY } : {}),
});

interface Event {
  type: "job.succeeded" | "job.failed" | "job.canceled" | "job.timed_out";
  data: { id: string; status: string; error: unknown; links: { result?: string } };
}

// The receiver: verifies every delivery before believing it, answers 2xx so it is not retried.
const event = await new Promise<Event>((resolve, reject) => {
  const receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      let verified: Event;
      try {
        verified = new Webhook(secret).verify(body, req.headers as Record<string, string>) as Event;
      } catch {
        res.writeHead(401).end(); // not from our speech service: refused, never acted on
        return;
      }
      res.writeHead(204).end();
      receiver.close();
      resolve(verified);
    });
  });
  receiver.on("error", reject);
  receiver.listen(Number(process.env.CALLBACK_PORT ?? 8080), "127.0.0.1", () => {
    const { port } = receiver.address() as AddressInfo;
    client
      .submit("tts.speak", { text, voice }, { callback: `http://127.0.0.1:${port}/hooks/tessera` })
      .then((job) => console.error(`submitted ${job.id}; waiting for the callback on port ${port}`), reject);
  });
});

if (event.type !== "job.succeeded" || !event.data.links.result) {
  console.log(JSON.stringify({ id: event.data.id, status: event.data.status, error: event.data.error }));
  process.exit(1);
}
// The signed URL needs no credentials: it can be handed to a browser or a player as it is.
const res = await fetch(event.data.links.result);
if (!res.ok) throw new Error(`result: HTTP ${res.status}`);
const wav = Buffer.from(await res.arrayBuffer());
await writeFile(out, wav);
console.log(
  JSON.stringify({
    id: event.data.id,
    status: "succeeded",
    contentType: res.headers.get("content-type"),
    bytes: wav.length,
    file: out,
  }),
);
