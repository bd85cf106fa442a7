// The V8 inspector (Chrome DevTools protocol) of the Worker's isolate, which Miniflare serves on
// loopback when a bench starts the Worker with `inspectorPort`. Used for heap readings (soak) and
// CPU profiles (fan-out): what the Worker's own JavaScript costs, by function, under load.

export interface Inspector {
	/** Sends one protocol command; null when it gets no answer within `timeoutMs`. */
	send(method: string, params?: Record<string, unknown>, timeoutMs?: number): Promise<unknown>;
	close(): void;
}

/** Connects to the Worker's isolate (not Miniflare's own workers) at `inspector`. */
export async function connectInspector(inspector: URL): Promise<Inspector> {
	const { WebSocket } = await import("ws");
	const res = await fetch(`http://${inspector.host}/json`);
	const list = (await res.json()) as { title?: string; webSocketDebuggerUrl?: string }[];
	// Titles look like "workerd: worker core:user:gitinsight-edge"; Miniflare's own are not "core:user:".
	const url = list.find((t) => t.title?.includes("core:user:"))?.webSocketDebuggerUrl;
	if (!url)
		throw new Error(`no inspector target for the Worker among ${list.map((t) => t.title).join(", ")}`);
	const ws = new WebSocket(url, { maxPayload: 512 * 2 ** 20 });
	await new Promise<void>((resolve, reject) => {
		ws.once("open", () => resolve());
		ws.once("error", reject);
	});
	let id = 0;
	const pending = new Map<number, (result: unknown) => void>();
	ws.on("message", (data: Buffer) => {
		const m = JSON.parse(data.toString()) as { id?: number; result?: unknown };
		if (m.id === undefined) return;
		pending.get(m.id)?.(m.result);
		pending.delete(m.id);
	});
	return {
		send: (method, params = {}, timeoutMs = 5000) =>
			new Promise<unknown>((resolve) => {
				const i = ++id;
				const t = setTimeout(() => {
					pending.delete(i);
					resolve(null);
				}, timeoutMs);
				pending.set(i, (result) => {
					clearTimeout(t);
					resolve(result ?? null);
				});
				if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ id: i, method, params }));
			}),
		close: () => ws.close(),
	};
}

interface ProfileNode {
	id: number;
	callFrame: { functionName: string; url: string; lineNumber: number };
	children?: number[];
}

export interface CpuProfile {
	nodes: ProfileNode[];
	samples?: number[];
	timeDeltas?: number[];
	startTime: number;
	endTime: number;
}

export interface ProfileLine {
	/** Function, module and line, or a V8 pseudo-node such as "(garbage collector)". */
	where: string;
	/** Share of all samples (self time, or self plus callees). */
	self: number;
	total: number;
}

/**
 * The functions with the most samples in a CPU profile: self time (the function's own code,
 * including the native calls it makes such as WebSocket.send) and total time (self plus
 * callees). "(idle)" is the isolate waiting: the rest of workerd (its WebSocket and HTTP
 * layers, the kernel) runs then.
 */
export function topFunctions(profile: CpuProfile, n: number): ProfileLine[] {
	const byId = new Map(profile.nodes.map((node) => [node.id, node]));
	const parent = new Map<number, number>();
	for (const node of profile.nodes) for (const c of node.children ?? []) parent.set(c, node.id);
	const selfCount = new Map<number, number>();
	for (const s of profile.samples ?? []) selfCount.set(s, (selfCount.get(s) ?? 0) + 1);
	const total = profile.samples?.length ?? 0;
	const label = (node: ProfileNode) => {
		const { functionName, url, lineNumber } = node.callFrame;
		const file = url.split("/").at(-1) ?? "";
		return file ? `${functionName || "(anonymous)"} ${file}:${lineNumber + 1}` : functionName;
	};
	const self = new Map<string, number>();
	const inclusive = new Map<string, number>();
	for (const [id, count] of selfCount) {
		const node = byId.get(id);
		if (!node) continue;
		self.set(label(node), (self.get(label(node)) ?? 0) + count);
		// Each label once per sample, however deep the recursion.
		const seen = new Set<string>();
		for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
			const n2 = byId.get(at);
			if (!n2) break;
			const l = label(n2);
			if (seen.has(l)) continue;
			seen.add(l);
			inclusive.set(l, (inclusive.get(l) ?? 0) + count);
		}
	}
	return [...self]
		.sort((a, b) => b[1] - a[1])
		.slice(0, n)
		.map(([where, count]) => ({
			where,
			self: total ? count / total : 0,
			total: total ? (inclusive.get(where) ?? 0) / total : 0,
		}));
}

/** Stops the CPU profile, writes it (open it in Chrome DevTools) and prints its top functions. */
export async function saveProfile(inspector: Inspector, file: string, top = 15): Promise<ProfileLine[]> {
	const { writeFileSync } = await import("node:fs");
	const answer = (await inspector.send("Profiler.stop", {}, 60_000)) as { profile?: CpuProfile } | null;
	if (!answer?.profile) {
		console.log("[bench] the inspector sent no profile");
		return [];
	}
	writeFileSync(file, JSON.stringify(answer.profile));
	const seconds = (answer.profile.endTime - answer.profile.startTime) / 1e6;
	console.log(
		`[bench] CPU profile of the Worker's isolate over ${seconds.toFixed(1)} s written to ${file}; top functions (self / with callees):`,
	);
	const lines = topFunctions(answer.profile, top);
	for (const line of lines) {
		console.log(
			`  ${(line.self * 100).toFixed(1).padStart(5)}%  ${(line.total * 100).toFixed(1).padStart(5)}%  ${line.where}`,
		);
	}
	return lines;
}

/** Starts sampling the isolate's CPU (every 250 µs). */
export async function startProfile(inspector: Inspector): Promise<void> {
	await inspector.send("Profiler.enable");
	await inspector.send("Profiler.setSamplingInterval", { interval: 250 });
	await inspector.send("Profiler.start");
}
