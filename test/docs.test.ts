// /openapi.json and /docs: the document is generated from the handlers' schemas, describes
// every operation the app serves, and the docs page needs nothing from the network.
import { describe, expect, it } from "vitest";
import { call, hs256Token } from "./helpers";

interface Doc {
	openapi: string;
	paths: Record<
		string,
		Record<
			string,
			{
				parameters: { name: string; in: string; schema: Record<string, unknown> }[];
				responses: Record<string, unknown>;
				"x-roles"?: string[];
			}
		>
	>;
}

async function doc(): Promise<Doc> {
	const res = await call("/openapi.json");
	expect(res.status).toBe(200);
	return (await res.json()) as Doc;
}

describe("OpenAPI", () => {
	it("is OpenAPI 3.1 with JSON Schema from the zod validators", async () => {
		const d = await doc();
		expect(d.openapi).toBe("3.1.0");
		const summary = d.paths["/api/v1/fast/repositories/{repo_id}/summary"]?.get;
		expect(summary?.parameters[0]).toMatchObject({ name: "repo_id", in: "path", schema: { type: "string" } });
		expect(summary?.["x-roles"]).toContain("user");
		expect(Object.keys(summary?.responses ?? {})).toEqual(
			expect.arrayContaining(["200", "304", "400", "401", "403", "404"]),
		);
	});

	it("describes only routes that exist: each documented operation answers something other than 'no route'", async () => {
		const d = await doc();
		const token = await hs256Token({ role: "admin" });
		for (const [path, item] of Object.entries(d.paths)) {
			for (const method of Object.keys(item)) {
				const concrete = path.replace(/\{[^}]+\}/g, "x");
				const res = await call(concrete, { method: method.toUpperCase(), token });
				const text = await res.text();
				expect(text, `${method} ${path}`).not.toContain("no route for");
			}
		}
	});
});

describe("/docs", () => {
	it("is a self-contained HTML page that loads the spec from this origin", async () => {
		const res = await call("/docs");
		expect(res.status).toBe(200);
		expect(res.headers.get("content-type")).toMatch(/^text\/html/);
		expect(res.headers.get("content-security-policy")).toContain("connect-src 'self'");
		const html = await res.text();
		expect(html).toContain('fetch("/openapi.json")');
		expect(html).not.toMatch(/(src|href)=["']?(https?:)?\/\//i);
		expect(html).not.toMatch(/@import|url\(http/i);
	});
});
