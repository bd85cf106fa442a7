// `node scripts/ci/lockfile-check.ts`: after `npm ci`, every package folder under node_modules
// must be an entry of package-lock.json. An install script that fetches a package of its own
// (as the `node` package's installArchSpecificPackage did) leaves a folder the lockfile does not
// pin; this fails on it. CI also checks that `npm ci` left the lockfile unchanged.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const lock = JSON.parse(readFileSync("package-lock.json", "utf8")) as { packages: Record<string, unknown> };
const found: string[] = [];

function walk(dir: string): void {
	for (const e of readdirSync(dir, { withFileTypes: true })) {
		if (!e.isDirectory() || e.name === ".bin" || e.name === ".cache") continue;
		const p = join(dir, e.name);
		if (e.name.startsWith("@")) {
			walk(p);
			continue;
		}
		if (!existsSync(join(p, "package.json"))) continue;
		found.push(p);
		if (existsSync(join(p, "node_modules"))) walk(join(p, "node_modules"));
	}
}

walk("node_modules");
const unpinned = found.filter((p) => !(p in lock.packages));
if (unpinned.length > 0) {
	console.error(`lockfile-check: installed but not in package-lock.json:\n  ${unpinned.join("\n  ")}`);
	process.exit(1);
}
console.log(`lockfile-check: ${found.length} installed packages, all pinned by package-lock.json`);
