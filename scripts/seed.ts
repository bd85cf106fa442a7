// `npm run seed -- [--repos N] [--seed S] [--today YYYY-MM-DD]`: replaces the repositories,
// insights and daily stats of DATABASE_URL with the deterministic dataset of scripts/lib/seed.ts,
// creating the database and applying migrations first when needed.
import { parseArgs } from "node:util";
import { databaseName, ensureDatabase, migrateDatabase, redactUrl } from "./lib/pg.ts";
import { DEFAULT_SEED, isValidDate, MAX_REPOS, seedDatabase, todayUtc } from "./lib/seed.ts";

const USAGE = "usage: npm run seed -- [--repos N] [--seed S] [--today YYYY-MM-DD]";
const DEFAULT_REPOS = 10_000;

function fail(message: string): never {
	console.error(`seed: ${message}\n${USAGE}`);
	process.exit(2);
}

function parseInteger(
	name: string,
	value: string | undefined,
	fallback: number,
	min: number,
	max: number,
): number {
	if (value === undefined) return fallback;
	if (!/^-?\d+$/.test(value)) fail(`--${name} must be an integer, got "${value}"`);
	const n = Number(value);
	if (!Number.isSafeInteger(n) || n < min || n > max)
		fail(`--${name} must be in ${min}..${max}, got ${value}`);
	return n;
}

let values: { repos?: string; seed?: string; today?: string; help?: boolean };
try {
	({ values } = parseArgs({
		options: {
			repos: { type: "string" },
			seed: { type: "string" },
			today: { type: "string" },
			help: { type: "boolean", short: "h" },
		},
		strict: true,
		allowPositionals: false,
	}));
} catch (error) {
	fail(error instanceof Error ? error.message : String(error));
}
if (values.help) {
	console.log(USAGE);
	process.exit(0);
}

const repos = parseInteger("repos", values.repos, DEFAULT_REPOS, 1, MAX_REPOS);
const seed = parseInteger("seed", values.seed, DEFAULT_SEED, -(2 ** 31), 2 ** 31 - 1);
const today = values.today ?? todayUtc();
if (!isValidDate(today)) fail(`--today must be a date YYYY-MM-DD, got "${today}"`);

const url = process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/gitinsight_dev";
const name = databaseName(url);
if (await ensureDatabase(url, name)) console.log(`created database ${name}`);
await migrateDatabase(url);
console.log(`seeding ${redactUrl(url)}: ${repos} repos, seed ${seed}, today ${today}`);
const stats = await seedDatabase(url, { repos, seed, today, log: (line) => console.log(`  ${line}`) });
console.log(
	`done in ${(stats.ms / 1000).toFixed(1)}s: ${stats.repositories} repositories, ${stats.insights} insights, ${stats.dailyStats} daily stats rows`,
);
