/**
 * `deno task cov`: runs every test with coverage collected (in this process and in every Deno
 * subprocess the tests start: `ccx serve`, workers, the CLI, through `DENO_COVERAGE_DIR`), then
 * prints line and branch coverage per module of `lib/`. Extra arguments go to `deno coverage`
 * (e.g. `--detailed`, `--lcov --output=cov.lcov`).
 * @module
 */
import { join } from "node:path";
import { ROOT } from "./helpers.ts";

const dir = join(ROOT, ".cache", "cov");
await Deno.remove(dir, { recursive: true }).catch(() => {});
await Deno.mkdir(dir, { recursive: true });

const test = await new Deno.Command(Deno.execPath(), {
  args: ["test", "-A", "--parallel", `--coverage=${dir}`, "tests/"],
  cwd: ROOT,
  // As `deno task test`: no test may check (connect to) Anthropic's API.
  env: { DENO_COVERAGE_DIR: dir, CCX_NO_API_CHECK: "1" },
  stdin: "null",
  stdout: "inherit",
  stderr: "inherit",
}).output();
if (!test.success) {
  console.error(`deno task cov: the tests failed (exit ${test.code}); coverage not reported`);
  Deno.exit(test.code || 1);
}
const report = await new Deno.Command(Deno.execPath(), {
  args: ["coverage", dir, `--include=^file://${ROOT}lib/`, ...Deno.args],
  cwd: ROOT,
  stdin: "null",
  stdout: "inherit",
  stderr: "inherit",
}).output();
Deno.exit(report.code);
