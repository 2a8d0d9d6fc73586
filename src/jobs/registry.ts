import { Ajv2020 } from "ajv/dist/2020.js";
import type { ErrorObject, ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";
import type { JobDefinition } from "./define.js";

// ajv-formats ships CommonJS; under NodeNext its default import is the module object.
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

export interface ValidationIssue {
  /** JSON Pointer into the request body, e.g. `/input/ms`. */
  path: string;
  message: string;
}

export interface RegisteredJob {
  readonly definition: JobDefinition;
  /** Returns the issues with paths under `prefix`, or an empty array when valid. */
  readonly check: (input: unknown, prefix: string) => ValidationIssue[];
}

/** Ajv errors as JSON Pointer + message; unknown properties point at the property itself. */
export function toIssues(errors: ErrorObject[] | null | undefined, prefix: string): ValidationIssue[] {
  return (errors ?? []).map((e) => {
    // Point at the member itself: an unknown one, or a required one that is missing.
    const member =
      e.keyword === "additionalProperties"
        ? (e.params as { additionalProperty: string }).additionalProperty
        : e.keyword === "required"
          ? (e.params as { missingProperty: string }).missingProperty
          : null;
    const extra = member === null ? "" : `/${String(member).replace(/~/g, "~0").replace(/\//g, "~1")}`;
    return { path: `${prefix}${e.instancePath}${extra}`, message: e.message ?? "is invalid" };
  });
}

/** A fresh Ajv for untrusted JSON: strict schemas, every error reported, no coercion. */
export function createAjv(): Ajv2020 {
  const ajv = new Ajv2020({ allErrors: true, strict: false, coerceTypes: false, useDefaults: false });
  addFormats(ajv);
  return ajv;
}

/**
 * The registered job types, compiled once at start-up. A `Map`, never a plain object:
 * `types.get("toString")` must not find `Object.prototype.toString`.
 */
export class JobRegistry {
  private readonly jobs = new Map<string, RegisteredJob>();

  constructor(definitions: readonly JobDefinition[]) {
    const ajv = createAjv();
    for (const definition of definitions) {
      if (this.jobs.has(definition.type))
        throw new TypeError(`job type "${definition.type}" is defined twice`);
      let validate: ValidateFunction;
      try {
        validate = ajv.compile(definition.input);
      } catch (error) {
        throw new TypeError(
          `job type "${definition.type}": invalid input schema: ${(error as Error).message}`,
        );
      }
      this.jobs.set(definition.type, {
        definition,
        check: (input, prefix) => (validate(input) ? [] : toIssues(validate.errors, prefix)),
      });
    }
  }

  get(type: string): RegisteredJob | undefined {
    return this.jobs.get(type);
  }

  get types(): string[] {
    return [...this.jobs.keys()];
  }

  definitions(): JobDefinition[] {
    return [...this.jobs.values()].map((j) => j.definition);
  }
}
