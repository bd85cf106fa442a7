// `npm run db:migrate`: applies drizzle/ migrations to DATABASE_URL (idempotent), creating the
// database first when it does not exist.
import { databaseName, ensureDatabase, migrateDatabase, redactUrl } from "./lib/pg.ts";

const url = process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/gitinsight_dev";
if (await ensureDatabase(url, databaseName(url))) console.log(`created database ${databaseName(url)}`);
await migrateDatabase(url);
console.log(`migrations applied to ${redactUrl(url)}`);
