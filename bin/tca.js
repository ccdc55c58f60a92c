#!/usr/bin/env node
// The `tca` command. It runs the JavaScript that `npm install` compiles from src/ into dist/ (the
// `prepare` script: `tsc -b tsconfig.build.json`); after editing src/, `npm run build` refreshes it.
import { existsSync } from "node:fs";
import process from "node:process";
import { URL, fileURLToPath } from "node:url";

const main = new URL("../dist/cli/main.js", import.meta.url);
if (!existsSync(main)) {
  process.stderr.write(
    `tca: ${fileURLToPath(main)} is missing: the TypeScript sources are not compiled yet.\n` +
      "Run `npm install` (it builds) or `npm run build` in the tca directory, then try again.\n",
  );
  process.exit(1);
}
await import(main.href);
