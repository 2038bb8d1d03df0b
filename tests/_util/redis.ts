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

/** A TCP relay in front of a Redis server, whose connections a test can cut. */
export interface RedisRelay {
  /** `redis://127.0.0.1:PORT` of the relay (no password: give the server none). */
  url: string;
  /** Connections relayed so far (each a client's connection that reached Redis). */
  relayed(): number;
  /** Connection attempts refused (closed at once) while cut. */
  refused(): number;
  /**
   * Cuts every relayed connection (both ends closed: Redis sees its client go) and closes
   * every new one at once, until {@linkcode RedisRelay.restore}: to its clients, the
   * connection is lost and cannot be made again.
   */
  cut(): void;
  /** Relays new connections again. */
  restore(): void;
  /** Stops listening and closes everything. */
  close(): Promise<void>;
}

/** Starts a {@linkcode RedisRelay} on a free loopback port, relaying to `port` on 127.0.0.1. */
export function redisRelay(port: number): RedisRelay {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  let down = false;
  let relayed = 0;
  let refused = 0;
  const shut = (c: Deno.Conn) => {
    open.delete(c);
    try {
      c.close();
    } catch { /* already closed */ }
  };
  const pipe = (from: Deno.Conn, to: Deno.Conn) =>
    from.readable.pipeTo(to.writable).catch(() => {}).finally(() => {
      shut(from);
      shut(to);
    });
  const accepting = (async () => {
    for await (const client of listener) {
      if (down) {
        refused++;
        shut(client);
        continue;
      }
      let server: Deno.Conn;
      try {
        server = await Deno.connect({ hostname: "127.0.0.1", port });
      } catch {
        shut(client);
        continue;
      }
      relayed++;
      open.add(client);
      open.add(server);
      void pipe(client, server);
      void pipe(server, client);
    }
  })().catch(() => {});
  return {
    url: `redis://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    relayed: () => relayed,
    refused: () => refused,
    cut() {
      down = true;
      for (const c of [...open]) shut(c);
    },
    restore() {
      down = false;
    },
    async close() {
      down = true;
      for (const c of [...open]) shut(c);
      listener.close();
      await accepting;
    },
  };
}
