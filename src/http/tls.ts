import { readFileSync } from "node:fs";
import { createSecureContext, type Server as TlsServer } from "node:tls";
import type { Logger } from "pino";
import type { Config } from "../config.js";
import { ConfigError } from "../config.js";

/** A certificate chain and its private key, PEM, as read from `--tls-cert` / `--tls-key`. */
export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
}

function readPem(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new ConfigError(`${flag} ${path} cannot be read (${code})`);
  }
}

/**
 * Read and check the configured pair (null without TLS). A missing or unreadable file, a file
 * that is not PEM, or a key that does not match the certificate is a `ConfigError`: Tessera
 * refuses to start rather than serve something else.
 */
export function loadTlsFiles(config: Pick<Config, "tlsCert" | "tlsKey">): TlsFiles | null {
  if (config.tlsCert === null || config.tlsKey === null) return null;
  const files = { cert: readPem("--tls-cert", config.tlsCert), key: readPem("--tls-key", config.tlsKey) };
  try {
    createSecureContext(files);
  } catch (error) {
    throw new ConfigError(
      `--tls-cert ${config.tlsCert} / --tls-key ${config.tlsKey} are not a usable PEM certificate and matching key: ${(error as Error).message}`,
    );
  }
  return files;
}

/**
 * Re-read the certificate and key (SIGHUP) and use them for new TLS handshakes; connections
 * already open keep theirs and are not dropped. On a bad file the old pair stays in use.
 * Returns whether the new pair was installed.
 */
export function reloadTls(
  server: unknown,
  config: Pick<Config, "tlsCert" | "tlsKey">,
  logger: Pick<Logger, "info" | "error">,
): boolean {
  if (config.tlsCert === null) return false;
  try {
    const files = loadTlsFiles(config);
    if (files === null) return false;
    (server as TlsServer).setSecureContext(files);
    logger.info({ cert: config.tlsCert }, "TLS certificate reloaded");
    return true;
  } catch (error) {
    logger.error(
      { cert: config.tlsCert, err: (error as Error).message },
      "TLS certificate NOT reloaded; still serving the previous one",
    );
    return false;
  }
}
