// GET /api/v1/me: who the presented token says the caller is (any role). Lets clients and
// operators check a token against this deployment's issuer, audience and keys.
import { Hono } from "hono";
import type { AppEnv } from "../env";
import { requireAuth } from "../middleware/auth";

export const me = new Hono<AppEnv>().get("/", requireAuth(), (c) => {
	const { sub, roles, via } = c.var.principal;
	c.header("Cache-Control", "no-store");
	return c.json({ sub, roles, verified_with: via });
});
