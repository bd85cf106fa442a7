// The Go peer of the summary bench (go-peer/main.go): built from Debian's Go packages only, in
// GOPATH mode (GOPATH=/usr/share/gocode, where Debian's -dev packages put their sources;
// GO111MODULE=off, GOPROXY=off: nothing is downloaded), into a temp dir, and run with
// GOMAXPROCS=1 on a free loopback port.
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { ROOT } from "../lib/local-config.ts";
import { type Availability, ensureDebianPackages } from "./debian.ts";
import { defer, errorText } from "./lib.ts";

const run = promisify(execFile);

export const GO_PACKAGES = [
	"golang-go",
	"golang-github-gin-gonic-gin-dev",
	"golang-github-jackc-pgx-v4-dev",
	"golang-github-gomodule-redigo-dev",
	"golang-github-golang-jwt-jwt-dev",
];
const GOPATH = "/usr/share/gocode";
/** The import paths main.go uses, as Debian ships them. */
const SOURCES = [
	"github.com/gin-gonic/gin",
	"github.com/jackc/pgx/v4/pgxpool",
	"github.com/gomodule/redigo/redis",
	"github.com/golang-jwt/jwt",
];
const GO_ENV = { GOPATH, GO111MODULE: "off", GOPROXY: "off", GOFLAGS: "" };

/** Installs the packages where possible and builds the peer; the binary's path, or why not. */
export async function buildGoPeer(): Promise<{ ok: true; bin: string; ms: number } | Availability> {
	const pkgs = await ensureDebianPackages(GO_PACKAGES);
	if (!pkgs.ok) return pkgs;
	const absent = SOURCES.filter((s) => !existsSync(join(GOPATH, "src", s)));
	if (absent.length > 0)
		return { ok: false, reason: `no sources under ${GOPATH}/src for ${absent.join(", ")}` };
	const dir = mkdtempSync(join(tmpdir(), "gi-bench-go-peer-"));
	defer("go peer build dir", () => rmSync(dir, { recursive: true, force: true }));
	const bin = join(dir, "go-peer");
	const t0 = performance.now();
	try {
		await run("go", ["build", "-o", bin, join(ROOT, "scripts/bench/go-peer/main.go")], {
			env: { ...process.env, ...GO_ENV },
			timeout: 600_000,
		});
	} catch (err) {
		const stderr = (err as { stderr?: string }).stderr ?? "";
		return { ok: false, reason: `go build failed: ${(stderr || errorText(err)).slice(0, 800)}` };
	}
	return { ok: true, bin, ms: performance.now() - t0 };
}

export interface GoPeer {
	origin: string;
	pid: number;
	/** What the peer wrote to stderr (its log), first 20 lines. */
	logLines: string[];
}

/** Starts the peer (GOMAXPROCS=1); stopped with SIGTERM at cleanup. */
export function startGoPeer(bin: string, env: Record<string, string>): Promise<GoPeer> {
	return new Promise((resolve, reject) => {
		const child = spawn(bin, [], {
			env: { PATH: process.env.PATH ?? "/usr/bin:/bin", GOMAXPROCS: "1", ...env },
			stdio: ["ignore", "pipe", "pipe"],
		});
		const peer: GoPeer = { origin: "", pid: child.pid ?? 0, logLines: [] };
		defer("go peer", async () => {
			if (child.exitCode !== null || child.signalCode !== null) return;
			const exited = new Promise<void>((r) => child.once("exit", () => r()));
			child.kill("SIGTERM");
			await exited;
		});
		const timer = setTimeout(() => reject(new Error("the Go peer did not start within 15 s")), 15_000);
		let out = "";
		child.stdout.on("data", (d: Buffer) => {
			out += d.toString();
			const m = /listening on (\S+)/.exec(out);
			if (m && !peer.origin) {
				peer.origin = `http://${m[1]}`;
				clearTimeout(timer);
				resolve(peer);
			}
		});
		child.stderr.on("data", (d: Buffer) => {
			for (const line of d.toString().split("\n")) {
				if (line && peer.logLines.length < 20) peer.logLines.push(line);
			}
		});
		child.once("error", (err) => {
			clearTimeout(timer);
			reject(err);
		});
		child.once("exit", (code, sig) => {
			clearTimeout(timer);
			if (!peer.origin)
				reject(new Error(`the Go peer exited (${code ?? sig}): ${peer.logLines.join(" | ").slice(0, 500)}`));
		});
	});
}
