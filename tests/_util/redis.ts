/**
 * A throwaway `redis-server` for tests: started on a free loopback port with no
 * persistence, in its own temporary directory. Used by the history and fleet tests.
 * @module
 */

import { join } from "node:path";

/** A free TCP port on 127.0.0.1 (free when asked; bind it soon). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Whether `bin` is an executable file on PATH. */
export function onPath(bin: string): boolean {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if (dir && Deno.statSync(join(dir, bin)).isFile) return true;
    } catch {
      // not here
    }
  }
  return false;
}

/** A running throwaway redis-server. */
export interface TestRedis {
  /** `redis://127.0.0.1:PORT` (`redis://:PASSWORD@127.0.0.1:PORT` with a password) */
  url: string;
  /** Its port. */
  port: number;
  /** Ends it (SIGTERM) and removes its directory. */
  stop: () => Promise<void>;
  /** Freezes it (SIGSTOP): clients stay connected and get no answer, as in an outage. */
  pause: () => void;
  /** Lets a paused server go on (SIGCONT); what it was sent meanwhile is then served. */
  resume: () => void;
}

/**
 * Starts a throwaway `redis-server` on a free loopback port; `stop()` ends it and cleans up.
 * With `password`, clients must give it (`requirepass`), and `url` carries it
 * (`redis://:PASSWORD@127.0.0.1:PORT`).
 */
export async function startRedis(opts: { password?: string } = {}): Promise<TestRedis> {
  if (!onPath("redis-server")) {
    throw new Error(
      "redis-server is not installed; the Redis tests need it: " +
        "apt-get install redis-server (or set CCX_SKIP_REDIS=1 to skip them)",
    );
  }
  const dir = await Deno.makeTempDir({ prefix: "ccx-redis-test-" });
  const port = freePort();
  const child = new Deno.Command("redis-server", {
    args: [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--dir",
      dir,
      ...(opts.password ? ["--requirepass", opts.password] : []),
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const signal = (sig: Deno.Signal) => {
    if (!exited) child.kill(sig);
  };
  const stop = async () => {
    signal("SIGCONT"); // a paused server would not act on SIGTERM
    signal("SIGTERM");
    await status;
    await Deno.remove(dir, { recursive: true });
  };
  try {
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (exited) throw new Error(`redis-server exited early: ${JSON.stringify(await status)}`);
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port })).close();
        break;
      } catch {
        if (Date.now() > deadline) throw new Error(`redis-server did not listen on ${port}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    url: `redis://${opts.password ? `:${opts.password}@` : ""}127.0.0.1:${port}`,
    port,
    stop,
    pause: () => signal("SIGSTOP"),
    resume: () => signal("SIGCONT"),
  };
}
