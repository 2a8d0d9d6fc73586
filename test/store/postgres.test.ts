import { PostgresStore } from "../../src/store/postgres/store.js";
import { freshSchema, PG_URL } from "../helpers/postgres.js";
import { describeStoreSuite } from "./store-suite.js";

describeStoreSuite("postgres", async () => {
  const store = await new PostgresStore({
    connectionString: PG_URL,
    schema: freshSchema("suite"),
    inlineResultBytes: 1024,
    poolSize: 4,
  }).open();
  const cleanup = async () => {
    await store.dropSchema();
    await store.close();
  };
  return { store, cleanup };
});
