// Reads the local configuration the way `wrangler dev` sees it: [vars] from wrangler.toml and
// secrets from .dev.vars (falling back to .dev.vars.example, which `npm run dev` copies).
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parse } from "smol-toml";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** Parses a .dev.vars / .env style file: KEY=VALUE lines, # comments, optional quotes. */
export function parseDotEnv(text: string): Record<string, string> {
	const out: Record<string, string> = {};
	for (const raw of text.split(/\r?\n/)) {
		const line = raw.trim();
		if (!line || line.startsWith("#")) continue;
		const eq = line.indexOf("=");
		if (eq <= 0) continue;
		let value = line.slice(eq + 1).trim();
		if (/^(".*"|'.*')$/.test(value)) value = value.slice(1, -1);
		out[line.slice(0, eq).trim()] = value;
	}
	return out;
}

/** The parts of wrangler.toml the Node-side tools read (runtime set-up for benches and e2e). */
export interface WranglerToml {
	compatibility_date?: string;
	compatibility_flags?: string[];
	vars?: Record<string, unknown>;
	durable_objects?: { bindings?: { name: string; class_name: string }[] };
	migrations?: { new_sqlite_classes?: string[] }[];
	analytics_engine_datasets?: { binding: string; dataset: string }[];
}

export function readWranglerToml(): WranglerToml {
	return parse(readFileSync(`${ROOT}wrangler.toml`, "utf8")) as WranglerToml;
}

/** wrangler.toml's [vars], as strings. */
export function readWranglerVars(): Record<string, string> {
	return Object.fromEntries(Object.entries(readWranglerToml().vars ?? {}).map(([k, v]) => [k, String(v)]));
}

export type ModuleType = "ESModule" | "CommonJS" | "Text" | "Data" | "CompiledWasm";

/** Wrangler's default module rules (the project declares no `rules` of its own). */
export function moduleTypeOf(file: string): ModuleType | undefined {
	if (/\.(m?js)$/.test(file)) return "ESModule";
	if (/\.cjs$/.test(file)) return "CommonJS";
	if (/\.(txt|html|sql)$/.test(file)) return "Text";
	if (/\.bin$/.test(file)) return "Data";
	if (/\.wasm$/.test(file)) return "CompiledWasm";
	return undefined; // source maps, README.md
}

export function readDevVars(): Record<string, string> {
	for (const name of [".dev.vars", ".dev.vars.example"]) {
		const path = `${ROOT}${name}`;
		if (existsSync(path)) return parseDotEnv(readFileSync(path, "utf8"));
	}
	return {};
}

/** vars, then .dev.vars, then the process environment: the last one wins. */
export function localConfig(): Record<string, string> {
	const fromEnv = Object.fromEntries(
		Object.entries(process.env).filter((e): e is [string, string] => typeof e[1] === "string"),
	);
	return { ...readWranglerVars(), ...readDevVars(), ...fromEnv };
}
