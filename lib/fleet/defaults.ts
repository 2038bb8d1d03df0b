/**
 * The fleet's defaults, in a module that loads nothing: the commands' option
 * declarations (`ccx stress --queue-name`, `ccx worker --lock-s`…) read them when
 * `ccx` starts, while BullMQ, which queue.ts and worker.ts load (about 13 MiB of
 * RSS), is loaded only by a command that uses the queue. queue.ts and worker.ts
 * keep their own copies (tests/defaults_test.ts checks they agree).
 *
 * @example
 * ```ts
 * import { DEFAULT_QUEUE_NAME } from "./defaults.ts";
 * console.log(DEFAULT_QUEUE_NAME); // "ccx"
 * ```
 * @module
 */

/**
 * Queue name used when none is given (`--queue-name`).
 *
 * @example
 * ```ts
 * import { DEFAULT_QUEUE_NAME } from "./defaults.ts";
 * console.log(DEFAULT_QUEUE_NAME); // "ccx"
 * ```
 */
export const DEFAULT_QUEUE_NAME = "ccx";

/**
 * Seconds a worker holds a task's lock by default (`--lock-s`).
 *
 * @example
 * ```ts
 * import { DEFAULT_LOCK_S } from "./defaults.ts";
 * console.log(DEFAULT_LOCK_S); // 10
 * ```
 */
export const DEFAULT_LOCK_S = 10;

/**
 * Seconds a stopping worker waits for its running tasks by default (`--drain-s`).
 *
 * @example
 * ```ts
 * import { DEFAULT_DRAIN_S } from "./defaults.ts";
 * console.log(DEFAULT_DRAIN_S); // 30
 * ```
 */
export const DEFAULT_DRAIN_S = 30;
