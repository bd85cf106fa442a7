// `npm run build:check`: bundles the Worker exactly as `wrangler deploy` would (--dry-run, no
// upload) and prints the bundle size, raw and gzipped, against the Workers limits.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { ROOT } from "./lib/local-config.ts";

const outdir = `${ROOT}dist`;
rmSync(outdir, { recursive: true, force: true });
execFileSync(`${ROOT}node_modules/.bin/wrangler`, ["deploy", "--dry-run", "--outdir", outdir], {
	cwd: ROOT,
	stdio: ["ignore", "ignore", "inherit"],
	env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
});
let raw = 0;
let gzipped = 0;
for (const file of readdirSync(outdir)) {
	if (!/\.(js|mjs|wasm)$/.test(file)) continue;
	const bytes = readFileSync(`${outdir}/${file}`);
	raw += statSync(`${outdir}/${file}`).size;
	gzipped += gzipSync(bytes).length;
}
const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
console.log(
	`bundle: ${kib(raw)} raw, ${kib(gzipped)} gzipped (Workers limit: 3 MiB gzipped on Free, 10 MiB on Paid)`,
);
if (gzipped > 3 * 1024 * 1024) {
	console.error("bundle exceeds the Free plan's 3 MiB limit");
	process.exit(1);
}
