import { TesseraError } from "../jobs/errors.js";

/** The database was migrated by a newer Tessera; running an older one against it is unsafe. */
export class SchemaTooNewError extends TesseraError {
  override name = "SchemaTooNewError";
  constructor(
    readonly found: number,
    readonly known: number,
  ) {
    super(`database schema version ${found} is newer than this Tessera knows (${known}); upgrade Tessera`);
  }
}
