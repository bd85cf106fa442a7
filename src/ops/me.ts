// GET /api/v1/me: who the presented token says the caller is (any role). Lets clients and
// operators check a token against this deployment's issuer, audience and keys.
import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../env";
import type { ApiOperation } from "../lib/openapi";
import { ROLES, requireAuth } from "../middleware/auth";

export const me = new Hono<AppEnv>().get("/", requireAuth(), (c) => {
	const { sub, roles, via } = c.get("principal");
	c.header("Cache-Control", "no-store");
	return c.json({ sub, roles, verified_with: via });
});

export const meOperations: ApiOperation[] = [
	{
		method: "get",
		path: "/api/v1/me",
		summary: "The caller as the bearer token describes it",
		tag: "auth",
		roles: [...ROLES],
		response: z.object({
			sub: z.string(),
			roles: z.array(z.enum(ROLES)),
			verified_with: z.enum(["hs256", "jwks"]),
		}),
	},
];
