// The deterministic seed: owns the contents of repositories, insights and repository_daily_stats,
// which it replaces (TRUNCATE ... CASCADE) with a realistic dataset that is a pure function of
// (repos, seed, today).
//
// Everything is generated inside Postgres, set-based (generate_series), in one transaction. The
// randomness is hash-based, never random(): u(k, salt) = hashint8extended(k, hash(salt, seed))
// mapped to [0,1), so every value depends only on its key, whatever the plan. Indexes and
// PK/unique/FK constraints of the three tables are dropped for the load and recreated from their
// catalog definitions afterwards (much faster than maintaining them row by row); the tables are
// VACUUM ANALYZEd after the commit (statistics, and the visibility map for index-only scans).
// 1M repos take ~2.5 minutes on 2 cores; the text of the plan, the tsvector the repositories table
// generates, and the index builds are the bulk of it.
//
// Distributions ("today" is a UTC date, the anchor instant today 00:00 UTC; N = repos):
// - id: md5(seed:i) with the version/variant nibbles set to 4/a, so it is a valid v4 uuid.
// - owner: 35% of repos belong to an org (org k of max(8, N/40), chosen with density ~ k^-1/2, so
//   the biggest own a few % of all repos), the rest to a user (uniform over max(20, N/3) users).
//   Names come from word lists; two keys may share a name, which merely merges two owners.
// - name: 1-3 words (Zipf over NAME_WORDS), kebab/snake/PascalCase/joined, sometimes a language
//   flavour ("-rs", "go-", "py", ".js"). Duplicate full names (case-insensitive) get "-2", "-3"...;
//   generated names never end in "-<digits>", so full_name is unique by construction.
// - description: 4-14 words, "[adjective] modifier.. head [connector modifier.. [and] modifier]":
//   heads weighted (library 19%, tool 12%, app 8%...), modifiers distinct Zipf draws over
//   MODIFIERS ("API" in ~half of all descriptions; "Kubernetes", "GraphQL", "compiler" ~5%; the
//   tail well under 1%); with probability min(0.25, 2*|RARE_WORDS|/N) a rare word, so that each
//   rare word is in ~2 repos at any N.
// - topics: 0-6 distinct (~22% none; more for popular repos), Zipf over TOPICS, the first often
//   the language's slug.
// - language: LANGUAGES weights (heavy head: JavaScript, Python, TypeScript...), 8% NULL.
// - stars: Lomax, P(stars > s) = (1+s)^-0.9 (about half 0, p90 ~13, p99 ~500), capped at
//   250k-450k; plus min(1%, 4/N) "famous" repos log-uniform in 20k-400k, so that even small
//   datasets have a head. Forks of other repos (is_fork, 10%) keep 2% of that; trending repos get
//   at least 30. forks = stars * 5-30% (skewed low) * 0.6-1.4 noise.
// - created_at: age = 12 years * u^1.6 (skewed to recent; famous repos are 4-12 years old);
//   pushed_at in [created_at, anchor]: near creation for abandoned repos (35%, 5% of popular ones),
//   else skewed to recent; updated_at in [pushed_at, anchor], recent for repos with 50+ stars.
// - analysis_status: completed 70%, pending 12%, queued 8%, analyzing 3%, failed 7%.
// - insights: completed repos only, count ~ exponential with mean 1.2 + 0.5*log10(1+stars), max
//   12; kinds security/performance/dependencies/documentation/testing/activity with per-kind
//   titles and bodies, severity info 35% / low 25% / medium 22% / high 13% / critical 5% (security
//   skews higher); created in the last 180 days, not before the repo. insight_count is counted
//   from the inserted rows.
// - repository_daily_stats: the 365 days through today, a row only for a day with activity (stars
//   gained >= 1, forks in the repo's fork ratio). Yearly growth G = 10-40% of stars (all of them for
//   repos younger than a year, 40-90% for trending ones), split over three segments (older than 30
//   days, days 8-30, the last 7) by length * weight: weights ~1 (0.6-1.4), but ~0.7% of repos trend
//   hard this week (25-100 on the last 7 days) and ~1.3% this month (6-20 on the last 30). Active
//   days per segment ~ L*(1-exp(-G_s/L)), as for Poisson arrivals: popular repos have a row nearly
//   every day, tail repos a few or none; ~4.5 rows per repo on average.
//   Final stars = max(planned, last year's gains), exactly the gains for repos younger than a year.
// - trending_score (0-10) = min(10, 1.2*log10(1+stars_7d) + 0.6*log10(1+stars_30d)
//   + 3*min(1, 2*stars_30d/(stars+50))), from the daily stats.
// - quality_score (0-100) = 35*min(1, log10(1+stars)/5) + 25*exp(-days since push/365)
//   + 15*min(1, description words/12) + 10*min(1, topics/4) + 10*[has language] + 5*[not a fork].
import pg from "pg";

export interface SeedOptions {
	repos: number;
	seed?: number;
	/** YYYY-MM-DD, UTC; default: today. */
	today?: string;
	log?: (line: string) => void;
}

export interface SeedStats {
	repositories: number;
	insights: number;
	dailyStats: number;
	ms: number;
}

export const DEFAULT_SEED = 1;
export const MAX_REPOS = 20_000_000;

// ---------------------------------------------------------------------------------------------
// Vocabularies. Word lists are ordered by intended frequency (Zipf rank); weights are relative.

const LANGUAGES: ReadonlyArray<readonly [name: string | null, slug: string, weight: number]> = [
	["JavaScript", "javascript", 15],
	["Python", "python", 14],
	["TypeScript", "typescript", 10],
	["Java", "java", 7.5],
	["Go", "golang", 4.5],
	["C++", "cpp", 4.5],
	["HTML", "html", 4.3],
	["C#", "csharp", 4],
	["PHP", "php", 3.8],
	["Jupyter Notebook", "jupyter-notebook", 3.6],
	["Shell", "shell", 3],
	["C", "c", 2.9],
	["Ruby", "ruby", 2.4],
	["CSS", "css", 2.3],
	["Rust", "rust", 2.3],
	["Kotlin", "kotlin", 1.7],
	["Swift", "swift", 1.5],
	["Dart", "dart", 1.2],
	["Vue", "vue", 1.1],
	["Scala", "scala", 0.6],
	["R", "r", 0.6],
	["Lua", "lua", 0.5],
	["Objective-C", "objective-c", 0.5],
	["PowerShell", "powershell", 0.45],
	["HCL", "terraform", 0.4],
	["Dockerfile", "docker", 0.35],
	["Haskell", "haskell", 0.3],
	["Elixir", "elixir", 0.3],
	["Perl", "perl", 0.3],
	["Solidity", "solidity", 0.25],
	["Clojure", "clojure", 0.2],
	["Julia", "julia", 0.15],
	["Nix", "nix", 0.15],
	["Zig", "zig", 0.15],
	["Erlang", "erlang", 0.1],
	["OCaml", "ocaml", 0.1],
];
const NULL_LANGUAGE_SHARE = 0.08;

// Descriptions are built as "[adjective] modifier.. head [connector modifier.. [and] modifier]",
// e.g. "Lightweight GraphQL client for React and Vue". Heads have explicit weights (the common
// "library", "tool", "app" first); modifiers are distinct Zipf draws over ~230 real tech words
// ("API" in about half the descriptions, rank ~15 "Kubernetes", "GraphQL", "compiler" in ~6%).
const ADJECTIVES = `
simple fast lightweight minimal modern tiny secure scalable extensible modular portable reactive
declarative typed async opinionated experimental unofficial awesome personal`;

const HEADS: ReadonlyArray<readonly [string, number]> = [
	["library", 22],
	["tool", 14],
	["app", 10],
	["framework", 6],
	["CLI", 5],
	["server", 4],
	["client", 4],
	["plugin", 4],
	["SDK", 3],
	["wrapper", 3],
	["bot", 3],
	["dashboard", 2],
	["template", 2],
	["starter", 2],
	["generator", 2],
	["parser", 2],
	["engine", 2],
	["extension", 2],
	["service", 2],
	["application", 2],
	["boilerplate", 1.5],
	["toolkit", 1.5],
	["website", 1.5],
	["game", 1.5],
	["editor", 1],
	["emulator", 1],
	["interpreter", 1],
	["scraper", 1],
	["crawler", 1],
	["proxy", 1],
	["gateway", 1],
	["operator", 1],
	["scanner", 1],
	["tracker", 1],
	["monitor", 1],
	["collection", 1],
	["implementation", 1],
	["tutorial", 1],
	["demo", 1],
	["linter", 0.7],
	["runtime", 0.7],
	["bundler", 0.5],
];

const MODIFIERS = `
API web data React Python JavaScript Node Vue TypeScript Docker JSON HTTP database UI Kubernetes GraphQL
compiler Rust Golang machine learning backend frontend mobile Android iOS cloud AWS Terraform Linux
static blog components authentication cache queue scheduler monitoring logging metrics testing
benchmark automation workflow pipeline deployment serverless microservices gRPC WebSocket realtime
chat terminal shell Vim Neovim Emacs VSCode theme config dotfiles Markdown documentation notes search
analytics visualization charts neural network deep model LLM GPT OpenAI transformer embeddings vector
image video audio music streaming file storage sync backup encryption crypto blockchain Ethereum
wallet payments ecommerce shop CMS admin panel forms validation schema ORM SQL Postgres MySQL SQLite
Redis MongoDB Elasticsearch Kafka RabbitMQ Nginx balancer DNS virtual raytracer shader OpenGL Vulkan
WebGL Wasm WebAssembly embedded firmware Arduino Raspberry IoT robotics drone simulation physics
geospatial maps GIS weather finance trading stock accounting invoice CRM ERP healthcare FHIR genomics
bioinformatics chemistry astronomy education quiz flashcards calendar todo productivity timer
pomodoro habit budget recipes fitness social Twitter Discord Slack Telegram email SMTP SMS
notifications RSS podcast YouTube Spotify downloader converter PDF CSV Excel XML YAML TOML Protobuf
serialization compression hashing regex diff Git GitHub GitLab CI actions Jenkins Ansible Helm
controller ingress mesh Istio Envoy observability tracing OpenTelemetry Prometheus Grafana alerting
incident security fuzzer pentest vulnerability firewall VPN SSH OAuth JWT SSO LDAP RBAC permissions
multitenant SaaS monorepo Webpack Vite Babel ESLint formatter typechecker language garbage collector
allocator concurrency threads actor distributed consensus Raft replication sharding indexing fulltext
ranking recommendation clustering classification regression forecasting timeseries anomaly detection
OCR speech translation NLP sentiment tokenizer dataset notebook Jupyter Pandas NumPy PyTorch
TensorFlow Keras scikit Spark Hadoop Airflow dbt ETL warehouse lakehouse Parquet Arrow DuckDB
ClickHouse`;

// Each is meant to appear in a handful of repos only (see the description rule above).
const RARE_WORDS = `
zettelkasten tokamak hyperloglog befunge teletext amiga fortran cobol quine xmodem pdp11 zx81
gameboy tamagotchi mandelbrot sudoku origami kriging lindenmayer boids voronoi delaunay quaternion
enigma morse ternary fractal sokoban minesweeper pachinko hovercraft tardigrade axolotl sourdough
kombucha bonsai harpsichord`;

// Before the first modifier after the head.
const CONNECTORS = "for with using in on via";

const NAME_WORDS = `
api fast json react cli app web tool kube operator parser hooks node lib core utils kit sdk server client
go vue next auth db sql lite micro tiny mini simple awesome proxy cache queue bot ui dash chart log logger
config env docker compose k8s helm terraform aws cloud edge worker stream event bus pipe flow task job cron
graph grpc rest http ws socket chat mail notify push sync store state redux form table grid tree map vec
matrix math stats ml ai llm gpt neural vision audio video image pdf doc docs md blog site static gen
scaffold starter template boilerplate theme dotfiles vim nvim emacs zsh shell term tui gui editor engine
game emu vm lang compiler lint fmt test bench mock fake spec check guard scan fuzz crypto hash token jwt
oauth wallet chain rpc link router gateway mesh agent daemon watch monitor metrics trace audit`;

const TOPICS = `
hacktoberfest javascript python react typescript machine-learning nodejs docker api golang rust
kubernetes cli deep-learning java linux css html android vue nextjs go hacktoberfest2023 tailwindcss
database open-source security devops ai llm chatgpt automation terraform aws game self-hosted
graphql postgresql redis mongodb nlp computer-vision data-science pytorch tensorflow neovim vim
dotfiles macos windows ios swift flutter dart kotlin spring-boot django flask fastapi express
nestjs svelte angular electron tauri webassembly wasm blockchain ethereum solidity web3 bot discord
telegram education awesome awesome-list tutorial documentation markdown static-site-generator blog
monitoring prometheus grafana observability microservices serverless testing ci github-actions
raspberry-pi arduino iot embedded robotics compiler interpreter emulator`;

const ORG_HEADS = `
octo acme pixel cloud data open hyper nova quantum blue red dev code byte bit stack rapid neo meta
alpha zen lambda vector signal river forest iron silver polar solar tiny mega micro smart deep light
north grid apex orbit prism nimbus ember atlas cobalt vertex sparrow maple cedar kite`;
const ORG_TAILS = `
labs works hq io dev soft systems tech studio team org hub ware forge collective foundation inc ai
data cloud apps code research`;
const FIRST_NAMES = `
alice bob carol dave erin frank grace heidi ivan judy mallory nina oscar peggy quinn rupert sybil trent
ursula victor wendy xavier yuki zoe ahmed fatima chen wei priya arjun lucas mateo sofia camila olga
dmitri hana kenji minh linh omar leila jonas freya emil ingrid pablo lucia kwame amara tariq noor sven
mia leo ava ethan maya noah liam ella kai ruby finn ines diego rosa tomas elif can aylin marek zofia`;
const LAST_NAMES = `
smith chen wang garcia mueller rossi kim nguyen patel singh silva costa novak kowalski ivanov sato
tanaka suzuki lee park brown wilson taylor martin bernard dubois moreau fischer weber becker hansen
larsen berg lindqvist nowak horvat popescu yilmaz demir haddad khan ali rahman okafor mensah diallo
santos oliveira ferreira lopez perez gomez diaz reyes cruz ortiz moreno jimenez romero alvarez ruiz`;

const STATUSES: ReadonlyArray<readonly [string, number]> = [
	["completed", 70],
	["pending", 12],
	["queued", 8],
	["analyzing", 3],
	["failed", 7],
];

const SEVERITIES: ReadonlyArray<readonly [string, number]> = [
	["info", 35],
	["low", 25],
	["medium", 22],
	["high", 13],
	["critical", 5],
];

// kind, weight, four titles and two bodies ("%s" is a small number).
const INSIGHT_KINDS: ReadonlyArray<
	readonly [kind: string, weight: number, titles: readonly string[], bodies: readonly string[]]
> = [
	[
		"security",
		15,
		[
			"%s dependencies with known vulnerabilities",
			"Secrets found in repository history",
			"Unpinned third-party CI actions",
			"Outdated TLS settings in HTTP client",
		],
		[
			"Automated scanning reported %s findings. Upgrade the affected packages or rotate the exposed credentials.",
			"%s advisories apply to this repository; the most severe allows remote code execution in a transitive dependency.",
		],
	],
	[
		"performance",
		13,
		[
			"N+1 queries in the data access layer",
			"Large bundle: %s kB gzipped",
			"Unbounded in-memory cache",
			"Blocking I/O on the request path",
		],
		[
			"Profiling the hot path shows %s avoidable round trips per request; batch them or add an index.",
			"The slowest endpoint spends %s ms in serialization; consider streaming the response.",
		],
	],
	[
		"dependencies",
		22,
		[
			"%s outdated dependencies",
			"Deprecated package in use",
			"Lockfile out of sync with manifest",
			"Duplicate versions of the same package",
		],
		[
			"%s direct dependencies are more than one major version behind their latest release.",
			"The dependency tree contains %s packages that are no longer maintained.",
		],
	],
	[
		"documentation",
		18,
		[
			"README lacks installation instructions",
			"No API reference",
			"%s public functions without doc comments",
			"Missing contributing guide",
		],
		[
			"New contributors cannot find setup steps; %s issues ask how to get started.",
			"%s exported symbols have no documentation; generate a reference from doc comments.",
		],
	],
	[
		"testing",
		17,
		[
			"Test coverage at %s%%",
			"No tests for error paths",
			"Flaky tests in CI",
			"No continuous integration configured",
		],
		[
			"%s modules have no tests at all; start with the ones changed most often.",
			"%s test runs failed intermittently over the last month without code changes.",
		],
	],
	[
		"activity",
		15,
		[
			"%s open issues without a response",
			"No commits in %s days",
			"Pull requests waiting over a month",
			"Single maintainer (bus factor 1)",
		],
		[
			"The median time to first response on issues is %s days.",
			"%s pull requests from external contributors have had no review.",
		],
	],
];

// ---------------------------------------------------------------------------------------------
// SQL

function words(list: string): string[] {
	const result = list.split(/\s+/).filter(Boolean);
	const seen = new Set<string>();
	for (const w of result) {
		// Identifiers starting with a letter; in particular never all digits, which keeps the "-<n>"
		// deduplication suffix of repository names collision-free.
		if (!/^[A-Za-z][A-Za-z0-9-]*$/.test(w)) throw new Error(`seed vocabulary: bad word ${w}`);
		if (seen.has(w.toLowerCase())) throw new Error(`seed vocabulary: duplicate word ${w}`);
		seen.add(w.toLowerCase());
	}
	return result;
}

/** The description's word classes must not overlap, so only modifiers need deduplicating. */
function checkDisjoint(lists: ReadonlyArray<readonly string[]>): void {
	const seen = new Set<string>();
	for (const w of lists.flat()) {
		if (seen.has(w.toLowerCase())) throw new Error(`seed vocabulary: ${w} is in two word classes`);
		seen.add(w.toLowerCase());
	}
}

/** Lower bounds of the buckets of a weighted choice, for width_bucket(u, bounds). */
function bounds(weights: readonly number[]): number[] {
	const total = weights.reduce((a, b) => a + b, 0);
	let acc = 0;
	return weights.map((w) => {
		const lower = acc / total;
		acc += w;
		return lower;
	});
}

const lit = (s: string | null): string => (s === null ? "NULL" : pg.escapeLiteral(s));
const textArray = (xs: ReadonlyArray<string | null>): string => `ARRAY[${xs.map(lit).join(", ")}]::text[]`;
// name[] rather than text[] for word lists: fixed-width elements make a subscript O(1).
const nameArray = (xs: readonly string[]): string => `ARRAY[${xs.map(lit).join(", ")}]::name[]`;
const floatArray = (xs: readonly number[]): string => `ARRAY[${xs.join(", ")}]::float8[]`;

/**
 * Session-local (pg_temp) helpers. The constants are IMMUTABLE SQL functions, so the planner
 * inlines and folds them: u(i, salt) costs one hash per row.
 */
function helpersSql(repos: number, seed: number, today: string): string {
	const konst = (name: string, type: string, value: string) =>
		`CREATE FUNCTION pg_temp.${name}() RETURNS ${type} LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT ${value} $$;`;
	// Named languages share 1 - NULL_LANGUAGE_SHARE in proportion to their weights; NULL is last.
	const named = LANGUAGES.reduce((sum, l) => sum + l[2], 0);
	const languageWeights = [
		...LANGUAGES.map((l) => (l[2] / named) * (1 - NULL_LANGUAGE_SHARE)),
		NULL_LANGUAGE_SHARE,
	];
	checkDisjoint([
		words(ADJECTIVES),
		HEADS.map((h) => h[0]),
		words(MODIFIERS),
		words(RARE_WORDS),
		words(CONNECTORS),
	]);
	return [
		konst("seed", "bigint", `${seed}::bigint`),
		konst("repo_count", "int", `${repos}`),
		konst("today", "date", `${lit(today)}::date`),
		konst("anchor", "timestamptz", `${lit(today)}::timestamp AT TIME ZONE 'UTC'`),
		konst("languages", "text[]", textArray([...LANGUAGES.map((l) => l[0]), null])),
		konst("language_slugs", "text[]", textArray([...LANGUAGES.map((l) => l[1]), null])),
		konst("language_bounds", "float8[]", floatArray(bounds(languageWeights))),
		konst("adjectives", "name[]", nameArray(words(ADJECTIVES))),
		konst("heads", "name[]", nameArray(HEADS.map((h) => h[0]))),
		konst("head_bounds", "float8[]", floatArray(bounds(HEADS.map((h) => h[1])))),
		konst("modifiers", "name[]", nameArray(words(MODIFIERS))),
		konst("rare_words", "name[]", nameArray(words(RARE_WORDS))),
		konst("connectors", "name[]", nameArray(words(CONNECTORS))),
		konst("name_words", "name[]", nameArray(words(NAME_WORDS))),
		konst("topics", "name[]", nameArray(words(TOPICS))),
		konst("org_heads", "name[]", nameArray(words(ORG_HEADS))),
		konst("org_tails", "name[]", nameArray(words(ORG_TAILS))),
		konst("first_names", "name[]", nameArray(words(FIRST_NAMES))),
		konst("last_names", "name[]", nameArray(words(LAST_NAMES))),
		konst("statuses", "text[]", textArray(STATUSES.map((s) => s[0]))),
		konst("status_bounds", "float8[]", floatArray(bounds(STATUSES.map((s) => s[1])))),
		konst("severities", "text[]", textArray(SEVERITIES.map((s) => s[0]))),
		konst("severity_bounds", "float8[]", floatArray(bounds(SEVERITIES.map((s) => s[1])))),
		konst("insight_kinds", "text[]", textArray(INSIGHT_KINDS.map((k) => k[0]))),
		konst("insight_kind_bounds", "float8[]", floatArray(bounds(INSIGHT_KINDS.map((k) => k[1])))),
		// titles[(kind - 1) * 4 + t], bodies[(kind - 1) * 2 + b]
		konst("insight_titles", "text[]", textArray(INSIGHT_KINDS.flatMap((k) => k[2]))),
		konst("insight_bodies", "text[]", textArray(INSIGHT_KINDS.flatMap((k) => k[3]))),
		`
		-- Uniform [0,1) from (seed, k, salt); u2 for two-part keys. 2^53 - 1 masks the low 53 bits.
		CREATE FUNCTION pg_temp.u(k bigint, salt int) RETURNS float8 LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
			SELECT (hashint8extended(k, hashint8extended(salt, pg_temp.seed())) & 9007199254740991)::float8
				/ 9007199254740992
		$$;
		CREATE FUNCTION pg_temp.u2(k bigint, j bigint, salt int) RETURNS float8 LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
			SELECT (hashint8extended(j, hashint8extended(k, hashint8extended(salt, pg_temp.seed())))
				& 9007199254740991)::float8 / 9007199254740992
		$$;
		-- Zipf (s = 1) rank in 1..n from a uniform u: P(rank = r) = ln((r + 1) / r) / ln(n + 1).
		CREATE FUNCTION pg_temp.zipf(u float8, n int) RETURNS int LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
			SELECT least(n, 1 + floor(exp(u * ln(n + 1.0)) - 1)::int)
		$$;
		-- A uniform pick in 1..n.
		CREATE FUNCTION pg_temp.pick(u float8, n int) RETURNS int LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
			SELECT 1 + floor(u * n)::int
		$$;
		-- Words of a list: Zipf-distributed by position, or uniform.
		CREATE FUNCTION pg_temp.zipf_word(list name[], u float8) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
			SELECT list[pg_temp.zipf(u, cardinality(list))]::text
		$$;
		CREATE FUNCTION pg_temp.pick_word(list name[], u float8) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
			SELECT list[pg_temp.pick(u, cardinality(list))]::text
		$$;
		-- A deterministic v4-shaped uuid.
		CREATE FUNCTION pg_temp.uuid_of(key text) RETURNS uuid LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
			SELECT overlay(overlay(md5(key) PLACING '4' FROM 13) PLACING 'a' FROM 17)::uuid
		$$;`,
	].join("\n");
}

// The plan: one row per repository with every per-repo decision; the three tables are derived
// from it. Salts: 1xx repo attributes, 2xx owner, 3xx name, 4xx description, 5xx topics.
//
// Numbers and dates first, then the text (the bulk of the work).
const BASE_SQL = `
CREATE TEMP TABLE seed_base ON COMMIT DROP AS
-- "OFFSET 0" keeps each stage a separate subquery: flattened, every reference to an earlier column
-- would re-evaluate its whole expression (hashes included).
WITH draw AS (
	SELECT
		i,
		pg_temp.uuid_of(pg_temp.seed() || ':' || i) AS id,
		-- owner key: negative = org (density ~ k^-1/2 over max(8, N/40) orgs), else user (uniform)
		CASE WHEN pg_temp.u(i, 201) < 0.35
			THEN -1 - floor(greatest(8, pg_temp.repo_count() / 40) * pg_temp.u(i, 202) ^ 2)::bigint
			ELSE floor(greatest(20, pg_temp.repo_count() / 3) * pg_temp.u(i, 203))::bigint
		END AS owner_key,
		width_bucket(pg_temp.u(i, 101), pg_temp.language_bounds()) AS language_no,
		pg_temp.u(i, 102) < 0.10 AS is_fork,
		pg_temp.u(i, 103) < least(0.01, 4.0 / pg_temp.repo_count()) AS famous,
		CASE WHEN pg_temp.u(i, 104) < 0.007 THEN 'week' WHEN pg_temp.u(i, 104) < 0.02 THEN 'month' END AS hot,
		-- Lomax tail P(X > s) = (1 + s)^-0.9, capped at 250k-450k
		least(floor((1 - pg_temp.u(i, 105)) ^ (-1 / 0.9) - 1), 250000 + floor(200000 * pg_temp.u(i, 106))) AS pareto_stars,
		width_bucket(pg_temp.u(i, 107), pg_temp.status_bounds()) AS status_no
	FROM generate_series(1, pg_temp.repo_count()) AS i
	OFFSET 0
), starred AS (
	SELECT d.*,
		(pg_temp.languages())[language_no] AS language,
		CASE
			WHEN famous AND NOT is_fork THEN floor(20000 * 20 ^ pg_temp.u(i, 110))
			WHEN is_fork THEN floor(pareto_stars * 0.02)
			WHEN hot IS NOT NULL THEN greatest(pareto_stars, 30 + floor(2000 * pg_temp.u(i, 111) ^ 3))
			ELSE pareto_stars
		END::int AS stars,
		-- created_at: age 12 years * u^1.6 (skewed to recent), famous repos 4-12 years
		date_trunc('second', pg_temp.anchor() - interval '1 day' *
			CASE WHEN famous AND NOT is_fork THEN 1460 + 2920 * pg_temp.u(i, 112) ELSE 4380 * pg_temp.u(i, 112) ^ 1.6 END
		) AS created_at
	FROM draw d
	OFFSET 0
), pushed AS (
	SELECT s.*,
		floor(stars * (0.05 + 0.25 * pg_temp.u(i, 120) ^ 1.5) * (0.6 + 0.8 * pg_temp.u(i, 121))
			+ CASE WHEN pg_temp.u(i, 122) < 0.05 THEN 1 ELSE 0 END)::int AS forks,
		date_trunc('second', created_at + (pg_temp.anchor() - created_at) *
			CASE WHEN pg_temp.u(i, 130) < CASE WHEN stars > 1000 THEN 0.05 ELSE 0.35 END
				THEN 0.3 * pg_temp.u(i, 131) ^ 3        -- abandoned soon after creation
				ELSE 1 - pg_temp.u(i, 131) ^ 3          -- still active: skewed to recent
			END) AS pushed_at
	FROM starred s
	OFFSET 0
)
SELECT
	p.i, p.id, p.is_fork, p.language, p.stars, p.forks, p.created_at, p.pushed_at,
	date_trunc('second', p.pushed_at + (pg_temp.anchor() - p.pushed_at) *
		CASE WHEN p.stars >= 50 THEN 1 - pg_temp.u(p.i, 140) ^ 3 ELSE pg_temp.u(p.i, 140) ^ 5 END) AS updated_at,
	(pg_temp.statuses())[p.status_no]::analysis_status AS analysis_status,
	CASE WHEN p.status_no = 1
		THEN least(12, floor(-ln(1 - pg_temp.u(p.i, 150)) * (1.2 + 0.5 * log(1 + p.stars::float8))))::int
		ELSE 0
	END AS insights_planned,
	-- daily-stats plan: yearly star growth target and weights of the last 30 / last 7 days
	p.stars * CASE
		WHEN p.created_at > pg_temp.anchor() - interval '365 days' THEN 1.0
		WHEN p.hot IS NOT NULL THEN 0.4 + 0.5 * pg_temp.u(p.i, 160)
		ELSE 0.10 + 0.30 * pg_temp.u(p.i, 160)
	END AS growth,
	CASE WHEN p.hot = 'month' THEN 6 + 14 * pg_temp.u(p.i, 161) ELSE 0.6 + 0.8 * pg_temp.u(p.i, 161) END AS weight_month,
	CASE p.hot WHEN 'week' THEN 25 + 75 * pg_temp.u(p.i, 162) WHEN 'month' THEN 6 + 14 * pg_temp.u(p.i, 161)
		ELSE 0.6 + 0.8 * pg_temp.u(p.i, 162) END AS weight_week,
	p.forks::float8 / greatest(p.stars, 1) AS fork_ratio,
	p.owner_key, p.language_no,
	-- description shape: [adjective] pre.. head [connector post.. [and] post] [rare word before the head]
	pg_temp.u(p.i, 401) < 0.45 AS desc_adjective,
	1 + floor(3 * pg_temp.u(p.i, 402) ^ 1.2)::int AS desc_pre,
	-- at least 4 words: a short description (adjective + pre + head < 4) gets a phrase after the head
	greatest(floor(7 * pg_temp.u(p.i, 403) ^ 1.6),
		CASE WHEN (pg_temp.u(p.i, 401) < 0.45)::int + 1 + floor(3 * pg_temp.u(p.i, 402) ^ 1.2) + 1 < 4 THEN 1 ELSE 0 END
	)::int AS desc_post,
	pg_temp.u(p.i, 404) < 0.5 AS desc_and,
	pg_temp.u(p.i, 405) < least(0.25, 2.0 * cardinality(pg_temp.rare_words()) / pg_temp.repo_count()) AS desc_rare,
	-- topics: 0-6, more for popular repos
	floor(7 * pg_temp.u(p.i, 501) ^ CASE WHEN p.stars >= 1000 THEN 0.5 ELSE 1.3 END)::int AS topic_count
FROM pushed p`;

const PLAN_SQL = `
CREATE TEMP TABLE seed_repo ON COMMIT DROP AS
SELECT
	p.*,
	owner.owner,
	-- repository name, sometimes flavoured by language
	CASE
		WHEN p.language = 'Rust' AND pg_temp.u(p.i, 301) < 0.2 THEN nm.name || '-rs'
		WHEN p.language = 'Go' AND pg_temp.u(p.i, 301) < 0.2 THEN 'go-' || nm.name
		WHEN p.language = 'Python' AND pg_temp.u(p.i, 301) < 0.1 THEN 'py' || nm.name
		WHEN p.language IN ('JavaScript', 'TypeScript') AND pg_temp.u(p.i, 301) < 0.08 THEN nm.name || '.js'
		ELSE nm.name
	END AS base_name,
	upper(left(ds.text, 1)) || substr(ds.text, 2) AS description,
	tp.topics
FROM seed_base p
-- owner name from its key alone, so all repos of a key share it
CROSS JOIN LATERAL (SELECT CASE WHEN p.owner_key < 0 THEN
		CASE WHEN pg_temp.u(p.owner_key, 210) < 0.15
			THEN initcap(pg_temp.pick_word(pg_temp.org_heads(), pg_temp.u(p.owner_key, 211)))
				|| initcap(pg_temp.pick_word(pg_temp.org_tails(), pg_temp.u(p.owner_key, 212)))
			ELSE pg_temp.pick_word(pg_temp.org_heads(), pg_temp.u(p.owner_key, 211))
				|| CASE WHEN pg_temp.u(p.owner_key, 213) < 0.4 THEN '-' ELSE '' END
				|| CASE WHEN pg_temp.u(p.owner_key, 214) < 0.3
					THEN pg_temp.pick_word(pg_temp.org_heads(), pg_temp.u(p.owner_key, 215)) || '-' ELSE '' END
				|| pg_temp.pick_word(pg_temp.org_tails(), pg_temp.u(p.owner_key, 212))
		END
	ELSE
		CASE WHEN pg_temp.u(p.owner_key, 220) < 0.25 THEN left(f.first, 1) ELSE f.first END
		|| CASE WHEN pg_temp.u(p.owner_key, 221) < 0.3 THEN '-' ELSE '' END
		|| f.last
		|| CASE WHEN pg_temp.u(p.owner_key, 222) < 0.4 THEN (10 + floor(90 * pg_temp.u(p.owner_key, 223)))::text ELSE '' END
	END AS owner
	FROM (SELECT
		pg_temp.pick_word(pg_temp.first_names(), pg_temp.u(p.owner_key, 224)) AS first,
		pg_temp.pick_word(pg_temp.last_names(), pg_temp.u(p.owner_key, 225)) AS last) f
) owner
-- name: 1-3 distinct Zipf words (15% / 55% / 30%); kebab 78%, snake 7%, PascalCase 9%, joined 6%
CROSS JOIN LATERAL (
	SELECT string_agg(CASE WHEN st.style = 'pascal' THEN initcap(w) ELSE w END,
			CASE st.style WHEN 'kebab' THEN '-' WHEN 'snake' THEN '_' ELSE '' END ORDER BY j) AS name
	FROM (SELECT CASE WHEN pg_temp.u(p.i, 310) < 0.78 THEN 'kebab' WHEN pg_temp.u(p.i, 310) < 0.85 THEN 'snake'
			WHEN pg_temp.u(p.i, 310) < 0.94 THEN 'pascal' ELSE 'joined' END AS style) st,
		(SELECT w, min(j) AS j
			FROM generate_series(1, CASE WHEN pg_temp.u(p.i, 311) < 0.15 THEN 1 WHEN pg_temp.u(p.i, 311) < 0.7 THEN 2 ELSE 3 END) j,
			LATERAL (SELECT pg_temp.zipf_word(pg_temp.name_words(), pg_temp.u2(p.i, j, 312)) AS w) x
			GROUP BY w) words
) nm
-- description, e.g. "Lightweight GraphQL client for React and Vue": parts placed by position. Modifiers
-- are the first desc_pre + desc_post distinct ones of that many + 6 Zipf draws; those after the head
-- follow a connector. With 2+ of them after the head the last may be joined by "and".
CROSS JOIN LATERAL (
	SELECT string_agg(w, ' ' ORDER BY pos) AS text
	FROM (
		SELECT 0.0 AS pos, pg_temp.zipf_word(pg_temp.adjectives(), pg_temp.u(p.i, 410)) AS w
		WHERE p.desc_adjective
		UNION ALL
		SELECT p.desc_pre + 0.5, pg_temp.pick_word(pg_temp.rare_words(), pg_temp.u(p.i, 411))
		WHERE p.desc_rare
		UNION ALL
		SELECT p.desc_pre + 0.7,
			(pg_temp.heads())[width_bucket(pg_temp.u(p.i, 412), pg_temp.head_bounds())]::text
		UNION ALL
		SELECT k + CASE WHEN k > p.desc_pre THEN 1 ELSE 0 END,
			CASE
				WHEN k = p.desc_pre + 1 THEN pg_temp.pick_word(pg_temp.connectors(), pg_temp.u(p.i, 413)) || ' '
				WHEN k = p.desc_pre + p.desc_post AND p.desc_post >= 2 AND p.desc_and THEN 'and '
				ELSE ''
			END || w
		FROM (SELECT w, row_number() OVER (ORDER BY j) AS k
			FROM (SELECT w, min(j) AS j
				FROM generate_series(1, p.desc_pre + p.desc_post + 6) j,
				LATERAL (SELECT pg_temp.zipf_word(pg_temp.modifiers(), pg_temp.u2(p.i, j, 414)) AS w) x
				GROUP BY w) distinct_words
		) modifier
		WHERE k <= p.desc_pre + p.desc_post
	) part
) ds
-- topics: 0-6 distinct, the first often the language's slug
CROSS JOIN LATERAL (
	SELECT coalesce(array_agg(t ORDER BY j), '{}') AS topics
	FROM (SELECT t, min(j) AS j
		FROM generate_series(1, p.topic_count) j,
		LATERAL (SELECT CASE WHEN j = 1 AND pg_temp.u(p.i, 502) < 0.4 AND (pg_temp.language_slugs())[p.language_no] IS NOT NULL
				THEN (pg_temp.language_slugs())[p.language_no]
				ELSE pg_temp.zipf_word(pg_temp.topics(), pg_temp.u2(p.i, j, 503)) END AS t) x
		GROUP BY t) distinct_topics
) tp`;

// Sparse daily stats over [today - 364, today] in three segments per repo (older than 30 days, days
// 8-30, the last 7), each clipped to the repo's lifetime and given a share of the repo's growth in
// proportion to length * weight. A segment of L days with star target G_s gets
// k = floor(L * (1 - exp(-G_s / L)) + u) active days (the expected number of distinct days of G_s
// Poisson arrivals, stochastically rounded). Day j of k is drawn in the j-th of k equal integer
// strata of the segment, so days are distinct; it gets 1 + Exp(mean (G_s - k) / k) stars, and forks
// in the repo's fork ratio. Salts 6xx.
const DAILY_STATS_SQL = `
INSERT INTO repository_daily_stats (repository_id, day, stars_gained, forks_gained)
WITH segment AS (
	SELECT r.i, r.id, r.fork_ratio, s.no, s.first_day, s.len, s.target,
		floor(s.len * (1 - exp(-least(s.target / s.len, 50))) + pg_temp.u2(r.i, s.no, 600))::int AS k
	FROM seed_repo r
	CROSS JOIN LATERAL (SELECT greatest(pg_temp.today() - 364, (r.created_at AT TIME ZONE 'UTC')::date) AS start) w
	CROSS JOIN LATERAL (SELECT
		greatest(0, pg_temp.today() - 30 - w.start + 1) AS len_old,
		greatest(0, pg_temp.today() - 7 - greatest(w.start, pg_temp.today() - 29) + 1) AS len_month,
		pg_temp.today() - greatest(w.start, pg_temp.today() - 6) + 1 AS len_week) l
	CROSS JOIN LATERAL (VALUES
		(1, w.start, l.len_old, 1.0),
		(2, greatest(w.start, pg_temp.today() - 29), l.len_month, r.weight_month),
		(3, greatest(w.start, pg_temp.today() - 6), l.len_week, r.weight_week)
	) seg(no, first_day, len, weight)
	CROSS JOIN LATERAL (SELECT seg.no, seg.first_day, seg.len,
		r.growth * seg.len * seg.weight / (l.len_old + l.len_month * r.weight_month + l.len_week * r.weight_week) AS target) s
	WHERE s.len > 0
	OFFSET 0
), active_day AS (
	SELECT s.i, s.id, s.fork_ratio, s.no * 1000 + j AS key,
		s.first_day + ((j - 1) * s.len) / s.k
			+ floor(pg_temp.u2(s.i, s.no * 1000 + j, 601) * ((j * s.len) / s.k - ((j - 1) * s.len) / s.k))::int AS day,
		1 + floor(greatest(0, s.target - s.k) / s.k * -ln(1 - pg_temp.u2(s.i, s.no * 1000 + j, 602))
			+ pg_temp.u2(s.i, s.no * 1000 + j, 603))::int AS gained
	FROM segment s
	CROSS JOIN LATERAL generate_series(1, s.k) j
	WHERE s.k > 0
	OFFSET 0
)
SELECT id, day, gained, floor(gained * fork_ratio + pg_temp.u2(i, key, 604))::int FROM active_day`;

// Salts 7xx. Only completed repos have insights.
const INSIGHTS_SQL = `
INSERT INTO insights (id, repository_id, kind, severity, title, body, created_at)
SELECT pg_temp.uuid_of(pg_temp.seed() || ':insight:' || r.i || ':' || j), r.id,
	(pg_temp.insight_kinds())[x.kind_no],
	-- security findings skew to higher severities
	(pg_temp.severities())[width_bucket(CASE WHEN x.kind_no = 1 THEN pg_temp.u2(r.i, j, 702) ^ 0.6 ELSE pg_temp.u2(r.i, j, 702) END,
		pg_temp.severity_bounds())]::insight_severity,
	format((pg_temp.insight_titles())[(x.kind_no - 1) * 4 + pg_temp.pick(pg_temp.u2(r.i, j, 703), 4)], x.n),
	format((pg_temp.insight_bodies())[(x.kind_no - 1) * 2 + pg_temp.pick(pg_temp.u2(r.i, j, 704), 2)], x.n),
	date_trunc('second', x.since + (pg_temp.anchor() - x.since) * pg_temp.u2(r.i, j, 705))
FROM seed_repo r
CROSS JOIN LATERAL generate_series(1, r.insights_planned) j
CROSS JOIN LATERAL (SELECT
	width_bucket(pg_temp.u2(r.i, j, 701), pg_temp.insight_kind_bounds()) AS kind_no,
	2 + floor(60 * pg_temp.u2(r.i, j, 706) ^ 2)::int AS n,
	greatest(r.created_at, pg_temp.anchor() - interval '180 days') AS since) x`;

// Repositories last: counts and growth come from the rows just inserted.
const REPOSITORIES_SQL = `
INSERT INTO repositories (id, owner, name, full_name, description, language, topics, stars, forks, is_fork,
	created_at, pushed_at, updated_at, analysis_status, insight_count, trending_score, quality_score)
WITH growth AS (
	SELECT repository_id,
		sum(stars_gained) AS stars_year,
		sum(forks_gained) AS forks_year,
		coalesce(sum(stars_gained) FILTER (WHERE day > pg_temp.today() - 7), 0) AS stars_7d,
		coalesce(sum(stars_gained) FILTER (WHERE day > pg_temp.today() - 30), 0) AS stars_30d
	FROM repository_daily_stats GROUP BY repository_id
), counted AS (
	SELECT repository_id, count(*)::int AS n FROM insights GROUP BY repository_id
), duplicate AS (
	-- the 2nd, 3rd... repo with the same full name (case-insensitive) gets "-2", "-3"...
	SELECT i, n FROM (
		SELECT i, row_number() OVER (PARTITION BY lower(owner || '/' || base_name) COLLATE "C" ORDER BY i) AS n FROM seed_repo
	) numbered WHERE n > 1
), shaped AS (
	SELECT r.*,
		r.base_name || coalesce('-' || dup.n, '') AS name,
		CASE WHEN r.created_at > pg_temp.anchor() - interval '365 days' THEN coalesce(g.stars_year, 0)
			ELSE greatest(r.stars, coalesce(g.stars_year, 0)) END::int AS final_stars,
		CASE WHEN r.created_at > pg_temp.anchor() - interval '365 days' THEN coalesce(g.forks_year, 0)
			ELSE greatest(r.forks, coalesce(g.forks_year, 0)) END::int AS final_forks,
		coalesce(g.stars_7d, 0)::float8 AS stars_7d,
		coalesce(g.stars_30d, 0)::float8 AS stars_30d,
		coalesce(c.n, 0) AS insight_count
	FROM seed_repo r
	LEFT JOIN duplicate dup ON dup.i = r.i
	LEFT JOIN growth g ON g.repository_id = r.id
	LEFT JOIN counted c ON c.repository_id = r.id
	OFFSET 0
)
SELECT id, owner, name, owner || '/' || name AS full_name, description, language, topics, final_stars, final_forks, is_fork,
	created_at, pushed_at, updated_at, analysis_status, insight_count,
	round(100 * least(10, 1.2 * log(1 + stars_7d) + 0.6 * log(1 + stars_30d)
		+ 3 * least(1, 2 * stars_30d / (final_stars + 50)))) / 100 AS trending_score,
	round(10 * (35 * least(1, log(1 + final_stars::float8) / 5)
		+ 25 * exp(-date_part('epoch', pg_temp.anchor() - pushed_at) / 86400 / 365)
		+ 15 * least(1, (length(description) - length(replace(description, ' ', '')) + 1) / 12.0)
		+ 10 * least(1, cardinality(topics) / 4.0)
		+ CASE WHEN language IS NOT NULL THEN 10 ELSE 0 END
		+ CASE WHEN is_fork THEN 0 ELSE 5 END)) / 10 AS quality_score
FROM shaped`;

const TABLES = ["repositories", "insights", "repository_daily_stats"] as const;

interface Definitions {
	/** ALTER TABLE ... DROP CONSTRAINT / DROP INDEX statements, in a valid order. */
	drops: string[];
	/** The statements recreating them, in a valid order. */
	creates: string[];
}

/**
 * The indexes and PK/unique/FK constraints of the three tables, and FKs of other tables that
 * reference them (which the PKs cannot be dropped without), as catalog definitions.
 */
async function indexDefinitions(client: pg.Client): Promise<Definitions> {
	const tables = TABLES.map((t) => `'public.${t}'::regclass`).join(", ");
	const constraints = await client.query<{ tbl: string; name: string; def: string; contype: string }>(
		`SELECT conrelid::regclass::text AS tbl, quote_ident(conname) AS name, pg_get_constraintdef(oid) AS def, contype::text
		FROM pg_constraint
		WHERE (conrelid IN (${tables}) AND contype IN ('p', 'u', 'f')) OR (contype = 'f' AND confrelid IN (${tables}))
		ORDER BY contype = 'f' DESC, conrelid::regclass::text, conname`,
	);
	const indexes = await client.query<{ name: string; def: string }>(
		`SELECT indexrelid::regclass::text AS name, pg_get_indexdef(indexrelid) AS def
		FROM pg_index i WHERE indrelid IN (${tables})
			AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid)
		ORDER BY 1`,
	);
	const fks = constraints.rows.filter((c) => c.contype === "f");
	const keys = constraints.rows.filter((c) => c.contype !== "f");
	const add = (c: { tbl: string; name: string; def: string }) =>
		`ALTER TABLE ${c.tbl} ADD CONSTRAINT ${c.name} ${c.def}`;
	const drop = (c: { tbl: string; name: string }) => `ALTER TABLE ${c.tbl} DROP CONSTRAINT ${c.name}`;
	return {
		drops: [...fks.map(drop), ...keys.map(drop), ...indexes.rows.map((i) => `DROP INDEX ${i.name}`)],
		creates: [...keys.map(add), ...indexes.rows.map((i) => i.def), ...fks.map(add)],
	};
}

export function todayUtc(): string {
	return new Date().toISOString().slice(0, 10);
}

export function isValidDate(s: string): boolean {
	if (!/^\d{4}-\d{2}-\d{2}$/.test(s)) return false;
	const d = new Date(`${s}T00:00:00Z`);
	return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === s;
}

/** Replaces the contents of repositories, insights and repository_daily_stats at `url`. */
export async function seedDatabase(url: string, opts: SeedOptions): Promise<SeedStats> {
	const { repos, seed = DEFAULT_SEED, today = todayUtc() } = opts;
	const log = opts.log ?? (() => {});
	if (!Number.isSafeInteger(repos) || repos < 1 || repos > MAX_REPOS)
		throw new RangeError(`repos must be an integer in 1..${MAX_REPOS}, got ${repos}`);
	if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
	if (!isValidDate(today)) throw new RangeError(`today must be a YYYY-MM-DD date, got ${today}`);

	const started = performance.now();
	const client = new pg.Client({ connectionString: url });
	await client.connect();
	const step = async (label: string, sql: string): Promise<number> => {
		const t0 = performance.now();
		const result = await client.query(sql);
		const ms = performance.now() - t0;
		log(`${label}: ${result.rowCount ?? 0} rows, ${(ms / 1000).toFixed(1)}s`);
		return result.rowCount ?? 0;
	};
	try {
		await client.query("BEGIN");
		await client.query(`SET LOCAL TimeZone = 'UTC'`);
		// The plan tables are temporary: keep them in memory (must precede their creation).
		await client.query(`SET LOCAL temp_buffers = '1GB'`);
		await client.query(`SET LOCAL client_min_messages = warning`);
		await client.query(`SET LOCAL maintenance_work_mem = '1GB'`);
		await client.query(`SET LOCAL work_mem = '256MB'`);
		await client.query(`SET LOCAL synchronous_commit = off`);
		// JIT compiling these huge expressions (the word lists are inlined constants) takes seconds.
		await client.query(`SET LOCAL jit = off`);
		await client.query(helpersSql(repos, seed, today));

		await client.query(`TRUNCATE ${TABLES.join(", ")} CASCADE`);
		const defs = await indexDefinitions(client);
		for (const sql of defs.drops) await client.query(sql);

		await step("plan: numbers", BASE_SQL);
		await step("plan: text", PLAN_SQL);
		const dailyStats = await step("repository_daily_stats", DAILY_STATS_SQL);
		const insights = await step("insights", INSIGHTS_SQL);
		const repositories = await step("repositories", REPOSITORIES_SQL);

		let t0 = performance.now();
		for (const sql of defs.creates) await client.query(sql);
		log(`indexes and constraints: ${defs.creates.length}, ${((performance.now() - t0) / 1000).toFixed(1)}s`);
		await client.query("COMMIT");

		t0 = performance.now();
		await client.query(`VACUUM (ANALYZE) ${TABLES.join(", ")}`);
		log(`vacuum analyze: ${((performance.now() - t0) / 1000).toFixed(1)}s`);
		return { repositories, insights, dailyStats, ms: Math.round(performance.now() - started) };
	} catch (error) {
		await client.query("ROLLBACK").catch(() => {});
		throw error;
	} finally {
		await client.end();
	}
}
