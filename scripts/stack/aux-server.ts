// Test-only stand-ins for the Worker's other outbound dependencies: an identity provider's JWKS
// endpoint (RS256, ES256 and EdDSA keys generated per run), the Python analysis API's health
// endpoint, and an endpoint that never answers (for timeout tests). Counted copies of the JWKS
// endpoint, one per name a test picks: /jwks/<name>.json serves the keys, /jwks-down/<name>.json
// answers 503, and /jwks-count/<name> says how many times either was fetched; likewise the
// Python API's /python-counted/<name>/health, counted as /jwks-count/python-<name>.
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, type JWK } from "jose";

export interface AuxServer {
	jwksUrl: string;
	pythonApiUrl: string;
	hangingUrl: string;
	privateJwks: { RS256: JWK; ES256: JWK; EdDSA: JWK };
	close(): Promise<void>;
}

async function keyPair(alg: "RS256" | "ES256" | "EdDSA"): Promise<{ pub: JWK; priv: JWK }> {
	const { publicKey, privateKey } = await generateKeyPair(alg, {
		extractable: true,
		...(alg === "EdDSA" ? { crv: "Ed25519" } : {}),
	});
	const kid = `test-${alg.toLowerCase()}`;
	return {
		pub: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" },
		priv: { ...(await exportJWK(privateKey)), kid, alg },
	};
}

export async function startAuxServer(port = 0): Promise<AuxServer> {
	const [rs, es, ed] = await Promise.all([keyPair("RS256"), keyPair("ES256"), keyPair("EdDSA")]);
	const jwks = JSON.stringify({ keys: [rs.pub, es.pub, ed.pub] });
	const hanging = new Set<ServerResponse>();
	const fetches = new Map<string, number>();
	const count = (name: string) => fetches.set(name, (fetches.get(name) ?? 0) + 1);
	const json = (res: ServerResponse, status: number, body: string) => {
		res.writeHead(status, { "content-type": "application/json" }).end(body);
	};
	const server = createServer((req, res) => {
		const path = new URL(req.url ?? "/", "http://x").pathname;
		if (path === "/.well-known/jwks.json") return json(res, 200, jwks);
		const counted = /^\/(jwks|jwks-down)\/([\w-]{1,64})\.json$/.exec(path);
		if (counted?.[2]) {
			count(counted[2]);
			return counted[1] === "jwks" ? json(res, 200, jwks) : json(res, 503, '{"error":"down"}');
		}
		const python = /^\/python-counted\/([\w-]{1,64})\/health$/.exec(path);
		if (python?.[1]) {
			count(`python-${python[1]}`);
			return json(res, 200, '{"status":"healthy"}');
		}
		const asked = /^\/jwks-count\/([\w-]{1,64})$/.exec(path);
		if (asked?.[1]) return json(res, 200, JSON.stringify({ count: fetches.get(asked[1]) ?? 0 }));
		if (path === "/python/health") return json(res, 200, '{"status":"healthy"}');
		if (path === "/python-down/health") return json(res, 503, '{"status":"unhealthy"}');
		if (path.startsWith("/hang")) {
			hanging.add(res);
			res.on("close", () => hanging.delete(res));
			return;
		}
		json(res, 404, '{"error":"not found"}');
	});
	await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
	const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
	return {
		jwksUrl: `${base}/.well-known/jwks.json`,
		pythonApiUrl: `${base}/python`,
		hangingUrl: `${base}/hang`,
		privateJwks: { RS256: rs.priv, ES256: es.priv, EdDSA: ed.priv },
		close: () =>
			new Promise<void>((resolve) => {
				for (const res of hanging) res.destroy();
				server.closeAllConnections();
				server.close(() => resolve());
			}),
	};
}
