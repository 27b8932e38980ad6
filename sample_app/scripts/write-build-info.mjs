// Runs after `tsc` (npm "postbuild"): records the package name and version in
// dist/build-info.json so the compiled service can report them even when
// package.json is not shipped next to dist/ (e.g. a distroless image).
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const outDir = join(root, "dist");

mkdirSync(outDir, { recursive: true });
writeFileSync(
  join(outDir, "build-info.json"),
  JSON.stringify({ name: pkg.name, version: pkg.version }, null, 2) + "\n",
);
