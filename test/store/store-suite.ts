/**
 * The store suite: written once against the `Store` interface and run for every driver
 * (`sqlite.test.ts`, later `postgres.test.ts`), each in a few lines. Every test gets a fresh
 * store; time is passed as `now` and backdated, never slept.
 */
import { afterEach, beforeEach, describe } from "vitest";
import type { Store } from "../../src/store/store.js";
import type { SuiteContext } from "./suite/context.js";
import { describeCallbacks } from "./suite/callbacks.js";
import { describeEvents } from "./suite/events.js";
import { describeJobs } from "./suite/jobs.js";
import { describeKeys } from "./suite/keys.js";
import { describeLeases } from "./suite/leases.js";
import { describeMaintenance } from "./suite/maintenance.js";
import { describeResults } from "./suite/results.js";
import { describeCloudEvents } from "./suite/cloud-events.js";
import { describeLifecycleEvents } from "./suite/lifecycle.js";
import { describeSagas } from "./suite/sagas.js";
import { describeSubscriptions } from "./suite/subscriptions.js";

export { LARGE_RESULT_BYTES } from "./suite/results.js";

export type MakeStore = () => Promise<{ store: Store; cleanup: () => Promise<void> }>;

/**
 * Registers the whole suite for one driver. `makeStore` must return a migrated, empty store
 * whose results above a small inline threshold (e.g. 1 KiB) are streamed rather than inlined.
 */
export function describeStoreSuite(name: string, makeStore: MakeStore): void {
  describe(`Store suite: ${name}`, () => {
    let current: Awaited<ReturnType<MakeStore>> | undefined;
    const ctx: SuiteContext = {
      get store() {
        if (!current) throw new Error("no store: used outside a test");
        return current.store;
      },
    };

    beforeEach(async () => {
      current = await makeStore();
    });
    afterEach(async () => {
      const done = current;
      current = undefined;
      await done?.cleanup();
    });

    describeJobs(ctx);
    describeLeases(ctx);
    describeResults(ctx);
    describeMaintenance(ctx);
    describeKeys(ctx);
    describeEvents(ctx);
    describeCallbacks(ctx);
    describeSagas(ctx);
    describeCloudEvents(ctx);
    describeSubscriptions(ctx);
    describeLifecycleEvents(ctx);
  });
}
