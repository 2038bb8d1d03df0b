/**
 * Where the Claude CLI will send its API calls, and whether anything answers there. With an
 * unreachable API the real CLI prints nothing for about 19 s, then retries for minutes before it
 * fails (CLAUDE_CLI.md), so `ccx stress` and `ccx exec` check the endpoint once, with a plain TCP
 * connect bounded to a few seconds, before they start the first Claude task.
 *
 * The endpoint is `ANTHROPIC_BASE_URL`, else `https://api.anthropic.com`; when a proxy variable
 * applies to it (`HTTPS_PROXY`/`https_proxy` for https, `HTTP_PROXY`/`http_proxy` for http, not
 * excluded by `NO_PROXY`), the CLI connects to the proxy, so the proxy is what is checked.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { apiEndpoint, checkApiEndpoint } from "./endpoint.ts";
 * assert.deepEqual(apiEndpoint({ ANTHROPIC_BASE_URL: "http://127.0.0.1:8088" }), {
 *   url: "http://127.0.0.1:8088",
 *   host: "127.0.0.1",
 *   port: 8088,
 *   source: "ANTHROPIC_BASE_URL=http://127.0.0.1:8088",
 * });
 * const problem = await checkApiEndpoint({ ANTHROPIC_BASE_URL: "http://127.0.0.1:1" });
 * assert.match(problem!, /^the Claude API endpoint 127\.0\.0\.1:1 \(ANTHROPIC_BASE_URL=http:\/\/127\.0\.0\.1:1\)/);
 * ```
 * @module
 */

/** The API the CLI uses when `ANTHROPIC_BASE_URL` is not set. */
export const DEFAULT_API_URL = "https://api.anthropic.com";

/** How long the connect may take by default, in milliseconds. */
export const API_CHECK_TIMEOUT_MS = 5000;

/** Where the CLI's API calls go first: the host and port to connect to, and why. */
export interface ApiEndpoint {
  /** The API's base URL (`ANTHROPIC_BASE_URL` or the default). */
  url: string;
  /** The host connected to: the API's, or the proxy's. */
  host: string;
  /** The port connected to. */
  port: number;
  /** Where the address came from, for messages: `ANTHROPIC_BASE_URL=…`, `the default …`, `HTTPS_PROXY=…`. */
  source: string;
}

/** Whether `NO_PROXY` (a comma- or space-separated list of hosts, `.suffix`es, or `*`) covers `host`. */
function noProxy(host: string, list: string | undefined): boolean {
  if (!list) return false;
  const h = host.toLowerCase().replace(/^\[|\]$/g, "");
  for (let entry of list.split(/[\s,]+/)) {
    entry = entry.trim().toLowerCase().replace(/:\d+$/, "");
    if (entry === "") continue;
    if (entry === "*") return true;
    const bare = entry.replace(/^\*?\./, "");
    if (h === bare || h.endsWith(`.${bare}`)) return true;
  }
  return false;
}

/** Port of a URL, its scheme's default when it names none. */
function portOf(u: URL): number {
  if (u.port) return Number(u.port);
  return u.protocol === "http:" ? 80 : 443;
}

/**
 * The address the Claude CLI will connect to for its API calls, from the environment it will
 * run with. Throws a `TypeError` naming the variable when `ANTHROPIC_BASE_URL` or the proxy
 * variable is not an http(s) URL.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { apiEndpoint } from "./endpoint.ts";
 * assert.equal(apiEndpoint({}).host, "api.anthropic.com");
 * assert.equal(apiEndpoint({ HTTPS_PROXY: "http://proxy.lan:3128" }).port, 3128); // the proxy is what is reached
 * ```
 */
export function apiEndpoint(env: Record<string, string | undefined>): ApiEndpoint {
  const given = env.ANTHROPIC_BASE_URL?.trim();
  const url = given || DEFAULT_API_URL;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new TypeError(`ANTHROPIC_BASE_URL: ${JSON.stringify(url)} is not a URL`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw new TypeError(`ANTHROPIC_BASE_URL: ${JSON.stringify(url)} is not an http(s) URL`);
  }
  const proxyVars = u.protocol === "https:"
    ? ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]
    : ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"];
  const proxyVar = proxyVars.find((v) => env[v]?.trim());
  if (proxyVar && !noProxy(u.hostname, env.NO_PROXY ?? env.no_proxy)) {
    const raw = env[proxyVar]!.trim();
    let p: URL;
    try {
      p = new URL(raw.includes("://") ? raw : `http://${raw}`);
    } catch {
      throw new TypeError(`${proxyVar}: ${JSON.stringify(raw)} is not a URL`);
    }
    p.password = p.password ? "***" : "";
    return {
      url,
      host: p.hostname.replace(/^\[|\]$/g, ""),
      port: p.port ? Number(p.port) : (p.protocol === "https:" ? 443 : 80),
      source: `the proxy ${proxyVar}=${p.href.replace(/\/$/, "")} for ${url}`,
    };
  }
  return {
    url,
    host: u.hostname.replace(/^\[|\]$/g, ""),
    port: portOf(u),
    source: given ? `ANTHROPIC_BASE_URL=${url}` : `the default API, ANTHROPIC_BASE_URL being unset`,
  };
}

/**
 * Opens a TCP connection to `host:port` and closes it; resolves with why it failed (`refused`,
 * `no answer within 5 s`, a DNS error…), or `undefined` when it connected.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tcpConnects } from "./endpoint.ts";
 * assert.equal(await tcpConnects("127.0.0.1", 1, 1000), "connection refused");
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * assert.equal(await tcpConnects("127.0.0.1", (listener.addr as Deno.NetAddr).port, 1000), undefined);
 * listener.close();
 * ```
 */
export async function tcpConnects(
  host: string,
  port: number,
  timeoutMs = API_CHECK_TIMEOUT_MS,
): Promise<string | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((r) => timer = setTimeout(() => r("late"), timeoutMs));
  const connecting = Deno.connect({ hostname: host, port });
  try {
    const got = await Promise.race([connecting, late]);
    if (got === "late") {
      // Should it connect after all, let go of it.
      connecting.then((c) => c.close(), () => {});
      return `no answer within ${timeoutMs / 1000} s`;
    }
    got.close();
    return undefined;
  } catch (e) {
    if (e instanceof Deno.errors.ConnectionRefused) return "connection refused";
    const msg = (e as Error).message.replace(/\s*\(os error \d+\)$/, "");
    return msg.toLowerCase();
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Checks that the Claude API endpoint the CLI will use (see {@linkcode apiEndpoint}) accepts a
 * TCP connection within `timeoutMs`; resolves with one message naming the address and what to
 * do, or `undefined` when it does.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MockApiServer } from "./mock_api/server.ts";
 * import { checkApiEndpoint } from "./endpoint.ts";
 * const api = MockApiServer.start({ port: 0 }); // `ccx mock-api`
 * assert.equal(await checkApiEndpoint({ ANTHROPIC_BASE_URL: api.url }), undefined); // something answers
 * await api.shutdown();
 * ```
 */
export async function checkApiEndpoint(
  env: Record<string, string | undefined>,
  timeoutMs = API_CHECK_TIMEOUT_MS,
): Promise<string | undefined> {
  let ep: ApiEndpoint;
  try {
    ep = apiEndpoint(env);
  } catch (e) {
    return (e as Error).message;
  }
  const why = await tcpConnects(ep.host, ep.port, timeoutMs);
  if (why === undefined) return undefined;
  const addr = ep.host.includes(":") ? `[${ep.host}]:${ep.port}` : `${ep.host}:${ep.port}`;
  return `the Claude API endpoint ${addr} (${ep.source}) did not accept a TCP connection: ` +
    `${why}. The CLI would retry for minutes and every Claude task would fail; check the network ` +
    `or proxy, or point ANTHROPIC_BASE_URL at a reachable API (ccx mock-api for an offline run). ` +
    `--no-api-check skips this check (CCX_NO_API_CHECK=1)`;
}
