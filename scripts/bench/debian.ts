// Debian packages a benchmark needs (wrk, the Go toolchain and libraries of the Go peer):
// installed with apt-get when missing, where that is possible (root, apt-get present); else the
// caller gets the reason and skips what needs them.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { promisify } from "node:util";
import { errorText, log } from "./lib.ts";

const run = promisify(execFile);

async function installed(pkg: string): Promise<boolean> {
	try {
		const { stdout } = await run("dpkg-query", ["-s", pkg]);
		return /^Status: install ok installed$/m.test(stdout);
	} catch {
		return false;
	}
}

export type Availability = { ok: true } | { ok: false; reason: string };

/** Makes sure `packages` are installed; apt-get install (then update + install) when not. */
export async function ensureDebianPackages(packages: string[]): Promise<Availability> {
	const missing: string[] = [];
	for (const p of packages) if (!(await installed(p))) missing.push(p);
	if (missing.length === 0) return { ok: true };
	if (!existsSync("/usr/bin/apt-get") || !existsSync("/usr/bin/dpkg-query"))
		return { ok: false, reason: `not installed: ${missing.join(" ")} (no apt-get here)` };
	if (process.getuid?.() !== 0)
		return { ok: false, reason: `not installed: ${missing.join(" ")} (apt-get needs root)` };
	const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
	const install = () =>
		run("apt-get", ["install", "-y", "--no-install-recommends", ...missing], { env, timeout: 600_000 });
	log(`apt-get install -y ${missing.join(" ")}…`);
	try {
		await install();
	} catch (first) {
		log(`apt-get install failed (${errorText(first).split("\n")[0]}); apt-get update and again…`);
		try {
			await run("apt-get", ["update"], { env, timeout: 300_000 });
			await install();
		} catch (err) {
			return {
				ok: false,
				reason: `apt-get install ${missing.join(" ")} failed: ${errorText(err).slice(0, 300)}`,
			};
		}
	}
	const still: string[] = [];
	for (const p of missing) if (!(await installed(p))) still.push(p);
	return still.length === 0 ? { ok: true } : { ok: false, reason: `still not installed: ${still.join(" ")}` };
}
