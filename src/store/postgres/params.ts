/** Array parameters for batched statements, built cheaply, and the lock order of batched writes. */

/** A value that an array literal can hold unquoted: no separator, brace, quote or space. */
const UNQUOTED = /^[0-9A-Za-z_.:-]+$/;

type ArrayValue = string | number | Buffer | null;

/**
 * One column of a batch as an array parameter, built as cheaply as its values allow. The
 * driver's own encoding quotes and escapes every element in turn (~1 KB of short-lived strings
 * per completed job); so: all NULL (the result columns of jobs that return nothing) is sent as
 * NULL, which `unnest` pads with NULLs; values that need no quoting (ids, lease tokens, kinds,
 * integers, NULLs) as an array literal joined at once; anything else the driver's way.
 */
export function arrayParam(values: ArrayValue[]): string | ArrayValue[] | null {
  // Indexed loops: a for-of allocates an iterator result per element until the code is optimized.
  let plain = true;
  let nulls = 0;
  for (let i = 0; i < values.length; i++) {
    const value = values[i]!;
    if (value === null) nulls++;
    else if (plain && !(typeof value === "number" ? Number.isSafeInteger(value) : isPlainText(value)))
      plain = false;
  }
  if (nulls === values.length) return null;
  if (!plain) return values;
  if (nulls === 0) return `{${values.join(",")}}`;
  let text = "";
  for (let i = 0; i < values.length; i++) text += (i === 0 ? "" : ",") + (values[i] ?? "NULL");
  return `{${text}}`;
}

function isPlainText(value: string | Buffer): boolean {
  return typeof value === "string" && UNQUOTED.test(value) && !/^null$/i.test(value);
}

/** Batched writes take their rows' locks in id order, so two of them never deadlock each other. */
export function byLeaseId<T extends { id: string } | { lease: { id: string } }>(items: readonly T[]): T[] {
  const id = (item: T) => ("lease" in item ? item.lease.id : item.id);
  return [...items].sort((a, b) => (id(a) < id(b) ? -1 : id(a) > id(b) ? 1 : 0));
}
