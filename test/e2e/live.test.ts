// The live activity page (GET /live) in a real browser: Debian's Chromium, headless, driven by
// playwright-core (no browser download). The page is served by the built Worker in workerd
// (test/e2e/worker.ts) over this run's real stand-ins (the global setup's database, Neon and
// Upstash stand-ins). The test, acting as a backend service, POSTs events with a service token:
//   1. the page shows an event on both streams (global and the repository's), with its seq;
//   2. server-side disconnect: the Worker is restarted (workerd stops, every socket drops; a new
//      one starts over the same Durable Object storage) while the front door refuses the
//      browser's reconnects; events posted meanwhile reach the hubs only;
//   3. the door opens: the page reconnects (full-jitter backoff) with since=<last seq> (and the
//      shard on the global stream) and shows the missed events, replayed, then live ones: the
//      seqs each panel shows are contiguous, nothing lost, nothing twice.
// Screenshots go to E2E_SCREENSHOT_DIR or <tmp>/gi-e2e-screenshots (the paths are printed).
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { e2eToken, someRepository, stackBindings } from "./stack.ts";
import { FrontDoor, TestWorker } from "./worker.ts";

const CHROMIUM = "/usr/bin/chromium";
// What this machine kind's Chromium needs (see .library machines notes): no sandbox as root,
// no GPU, and nothing that reaches for Google's hosts from a closed network.
const CHROMIUM_FLAGS = [
	"--no-sandbox",
	"--disable-gpu",
	"--disable-quic",
	"--no-first-run",
	"--disable-background-networking",
	"--disable-component-update",
	"--disable-sync",
];

interface Delivery {
	id: string;
	status: "accepted" | "duplicate";
	seq: { repository: number | null; global: number[] };
}

let worker: TestWorker | undefined;
let door: FrontDoor | undefined;
let context: BrowserContext | undefined;
let profileDir: string | undefined;
let shotDir = "";
let repoId = "";
let userToken = "";
let serviceToken = "";
const pageErrors: string[] = [];

/** The backend service: POST /api/v1/events straight to the Worker (not through the door). */
async function publish(event: Record<string, unknown>): Promise<Delivery> {
	if (!worker) throw new Error("no worker");
	const res = await fetch(`${worker.origin}/api/v1/events`, {
		method: "POST",
		headers: { authorization: `Bearer ${serviceToken}`, "content-type": "application/json" },
		body: JSON.stringify(event),
		signal: AbortSignal.timeout(10_000),
	});
	const body = (await res.json()) as Delivery;
	expect(res.status, JSON.stringify(body)).toBe(202);
	expect(body.status).toBe("accepted");
	return body;
}

/** The seqs a panel shows, ascending. */
function seqsOf(page: Page, panel: "global" | "repo"): Promise<number[]> {
	return page.$$eval(`#${panel} li[data-seq]`, (rows) =>
		rows.map((r) => Number(r.getAttribute("data-seq"))).sort((a, b) => a - b),
	);
}

async function stateOf(page: Page, panel: "global" | "repo"): Promise<string> {
	return (await page.getAttribute(`#${panel}`, "data-state")) ?? "";
}

async function shot(page: Page, name: string): Promise<void> {
	const path = join(shotDir, `${name}.png`);
	await page.screenshot({ path, fullPage: true });
	console.log(`[e2e] screenshot: ${path}`);
}

const uid = () => `e2e-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;

beforeAll(async () => {
	if (!existsSync(CHROMIUM)) {
		throw new Error(
			`${CHROMIUM} is missing: run scripts/ensure-chromium.sh (installs Debian's chromium package)`,
		);
	}
	// One fixed place (each run overwrites the last run's pictures), or where the caller says.
	shotDir = process.env.E2E_SCREENSHOT_DIR ?? join(tmpdir(), "gi-e2e-screenshots");
	mkdirSync(shotDir, { recursive: true });
	[repoId, userToken, serviceToken] = await Promise.all([
		someRepository(),
		e2eToken("user", "e2e-user"),
		e2eToken("service", "e2e-service"),
	]);

	door = await FrontDoor.open(() => worker?.origin ?? "http://127.0.0.1:9");
	worker = await TestWorker.start({
		...stackBindings(),
		// The page's origin is the front door's: the only browser origin allowed to open streams.
		CORS_ORIGINS: door.origin,
	});

	profileDir = mkdtempSync(join(tmpdir(), "gi-e2e-chromium-"));
	context = await chromium.launchPersistentContext(profileDir, {
		executablePath: CHROMIUM,
		headless: true,
		args: CHROMIUM_FLAGS,
		viewport: { width: 1280, height: 860 },
		timeout: 60_000,
	});
});

afterAll(async () => {
	await context?.close().catch((err: unknown) => console.error(`[e2e] closing chromium: ${String(err)}`));
	await door?.close();
	await worker?.stop();
	if (profileDir) rmSync(profileDir, { recursive: true, force: true });
	if (worker?.problems.length) console.log(`[e2e] the Worker logged:\n  ${worker.problems.join("\n  ")}`);
});

describe("the live activity page in Chromium", () => {
	it("is served self-contained with a strict CSP", async () => {
		const res = await fetch(`${door?.origin}/live`);
		expect(res.status).toBe(200);
		expect(res.headers.get("content-type")).toMatch(/^text\/html/);
		const csp = res.headers.get("content-security-policy") ?? "";
		expect(csp).toContain("default-src 'none'");
		expect(csp).toContain("connect-src 'self'");
		const html = await res.text();
		// No external assets: no src/href to another origin.
		expect(html).not.toMatch(/(src|href)=["']?(https?:)?\/\//i);
	});

	it("shows a posted event live, survives a server restart and resumes without a gap", async () => {
		if (!context || !door || !worker) throw new Error("set-up failed");
		const page = await context.newPage();
		page.on("pageerror", (err) => pageErrors.push(err.message));
		page.on("console", (m) => {
			if (m.type() === "error" && /Content Security Policy|Refused to/i.test(m.text()))
				pageErrors.push(m.text());
		});

		// The token travels in the fragment (never sent to the server); fast backoff for the test.
		await page.goto(
			`${door.origin}/live?repo=${repoId}&backoff_base_ms=200&backoff_max_ms=1000#token=${userToken}`,
		);
		await page.waitForSelector('#global[data-state="open"]', { timeout: 20_000 });
		await page.waitForSelector('#repo[data-state="open"]', { timeout: 20_000 });
		expect(page.url()).not.toContain("token");
		expect(page.url()).toContain(`repo=${repoId}`);
		const shard = Number(await page.getAttribute("#global", "data-shard"));
		expect(Number.isInteger(shard)).toBe(true);

		// 1. A live event on both streams, with the seq each hub gave it.
		const first = await publish({
			id: uid(),
			type: "analysis_completed",
			repository_id: repoId,
			data: { insights_added: 5, step: "live" },
		});
		await page.waitForSelector(`#repo li[data-id="${first.id}"]`, { timeout: 10_000 });
		await page.waitForSelector(`#global li[data-id="${first.id}"]`, { timeout: 10_000 });
		expect(await page.getAttribute(`#repo li[data-id="${first.id}"]`, "data-seq")).toBe(
			String(first.seq.repository),
		);
		expect(await page.getAttribute(`#global li[data-id="${first.id}"]`, "data-seq")).toBe(
			String(first.seq.global[shard]),
		);
		expect(await page.getAttribute(`#repo li[data-id="${first.id}"]`, "data-replay")).toBe("0");
		await shot(page, "1-live");

		// 2. Server-side disconnect: the door refuses reconnects, the Worker restarts (workerd
		// exits: every socket drops), and events are published while the page is away.
		door.shut = true;
		await worker.restart();
		door.drop();
		await page.waitForSelector('#global[data-state="reconnecting"]', { timeout: 10_000 });
		await page.waitForSelector('#repo[data-state="reconnecting"]', { timeout: 10_000 });
		const missed: Delivery[] = [];
		for (const [type, repo] of [
			["insight_added", true],
			["x-e2e.deploy", false],
			["repository_updated", true],
			["analysis_started", true],
			["x-e2e.note", false],
		] as const) {
			missed.push(
				await publish({
					id: uid(),
					type,
					...(repo ? { repository_id: repoId } : {}),
					data: { step: "while-disconnected" },
				}),
			);
		}
		// Still away: nothing of it is on the page yet.
		for (const d of missed) expect(await page.$(`li[data-id="${d.id}"]`)).toBeNull();
		await shot(page, "2-reconnecting");

		// 3. The door opens: reconnect, replay since the last seq, then live again.
		door.shut = false;
		const last = missed.at(-1);
		if (!last) throw new Error("nothing published");
		await page.waitForSelector(`#global li[data-id="${last.id}"]`, { timeout: 20_000 });
		const lastRepo = missed.filter((d) => d.seq.repository !== null).at(-1);
		await page.waitForSelector(`#repo li[data-id="${lastRepo?.id}"]`, { timeout: 20_000 });
		await page.waitForSelector('#global[data-state="open"]', { timeout: 10_000 });
		await page.waitForSelector('#repo[data-state="open"]', { timeout: 10_000 });
		for (const d of missed) {
			expect(await page.getAttribute(`#global li[data-id="${d.id}"]`, "data-seq")).toBe(
				String(d.seq.global[shard]),
			);
			expect(await page.getAttribute(`#global li[data-id="${d.id}"]`, "data-replay")).toBe("1");
			if (d.seq.repository !== null) {
				expect(await page.getAttribute(`#repo li[data-id="${d.id}"]`, "data-replay")).toBe("1");
			} else {
				// Custom events without a repository are on the global stream only.
				expect(await page.$(`#repo li[data-id="${d.id}"]`)).toBeNull();
			}
		}
		// Resumed on the same shard, where its seqs mean something.
		expect(Number(await page.getAttribute("#global", "data-shard"))).toBe(shard);

		const after = await publish({
			id: uid(),
			type: "analysis_completed",
			repository_id: repoId,
			data: { insights_added: 1, step: "live-again" },
		});
		await page.waitForSelector(`#repo li[data-id="${after.id}"]`, { timeout: 10_000 });
		await page.waitForSelector(`#global li[data-id="${after.id}"]`, { timeout: 10_000 });
		expect(await page.getAttribute(`#repo li[data-id="${after.id}"]`, "data-replay")).toBe("0");

		// Contiguous seqs on each panel: first event .. last, nothing missing, nothing twice.
		const contiguous = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i);
		const globalFrom = first.seq.global[shard] ?? -1;
		const repoFrom = first.seq.repository ?? -1;
		expect(await seqsOf(page, "global")).toEqual(contiguous(globalFrom, 1 + missed.length + 1));
		expect(await seqsOf(page, "repo")).toEqual(
			contiguous(repoFrom, 1 + missed.filter((d) => d.seq.repository !== null).length + 1),
		);
		expect(await page.$$("li.notice")).toHaveLength(0);
		expect(await stateOf(page, "global")).toBe("open");
		expect(await stateOf(page, "repo")).toBe("open");
		await shot(page, "3-resumed");
		expect(pageErrors).toEqual([]);
		await page.close();
	});
});
