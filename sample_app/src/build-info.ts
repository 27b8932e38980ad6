import { readFileSync } from "node:fs";
import path from "node:path";

export interface BuildInfo {
  name: string;
  version: string;
}

const FALLBACK: BuildInfo = { name: "sample-app", version: "0.0.0" };

function readJson(file: string): Partial<BuildInfo> | undefined {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as Partial<BuildInfo>;
  } catch {
    return undefined;
  }
}

/**
 * Name and version of the service. Looked up, in order, in:
 *  1. dist/build-info.json, written at build time (works without package.json,
 *     e.g. in a distroless image that ships only dist/ and node_modules/);
 *  2. package.json one level above this module (running from src/ in tests);
 *  3. the variables npm sets for `npm start`.
 */
export function loadBuildInfo(baseDir: string = __dirname): BuildInfo {
  const candidates = [
    readJson(path.join(baseDir, "build-info.json")),
    readJson(path.join(baseDir, "..", "package.json")),
    { name: process.env.npm_package_name, version: process.env.npm_package_version },
  ];
  for (const info of candidates) {
    if (info?.name && info.version) {
      return { name: info.name, version: info.version };
    }
  }
  return FALLBACK;
}
