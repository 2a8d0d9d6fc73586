/**
 * A speech service as a Tessera job type: each job runs `espeak-ng` once, in a fresh process,
 * which writes a WAV file into the attempt's output dir; Tessera stores that file as the job's
 * result and streams it from the signed result URL as `audio/wav`.
 *
 *   tessera serve --jobs examples/text-to-speech/jobs.ts
 */
import { defineCommandJob } from "tessera";

export const speak = defineCommandJob({
  type: "tts.speak",
  description: "Speaks `text` with the espeak-ng voice `voice`; the result is a WAV file",
  input: {
    type: "object",
    properties: {
      text: { type: "string", minLength: 1, maxLength: 5000 },
      // espeak-ng voice names: a language code, optionally a variant ("en", "en-us", "de", "fr").
      voice: { type: "string", pattern: "^[a-z]{2,3}(-[a-z0-9]{1,8})*$" },
    },
    required: ["text", "voice"],
    additionalProperties: false,
  },
  // No shell: each entry is one argument. The text comes after "--", so a text that starts
  // with "-" is read as text, not as an option.
  command: ["espeak-ng", "-v", "{input.voice}", "-w", "{outputDir}/speech.wav", "--", "{input.text}"],
  // espeak-ng exits 1 for a voice it does not know: the request's fault, not worth a retry.
  exitCodes: { 1: 422 },
  timeoutSeconds: 120,
  maxAttempts: 3,
  concurrency: 2,
  killGraceMs: 2000,
});
