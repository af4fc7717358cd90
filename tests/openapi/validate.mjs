// validate.mjs: tests/run's OpenAPI check, part 1: @apidevtools/swagger-parser validates the
// document (OpenAPI 3.1 schema, $refs, operation ids, path parameters). Part 2 is `redocly lint`.
//
// Usage: node tests/openapi/validate.mjs NODE_MODULES_PARENT openapi.json
// (the npm packages are installed outside the tree by tests/run, so they are found through the
// directory given, not through this file's location)
import { createRequire } from "node:module";
import path from "node:path";

const [dir, file] = process.argv.slice(2);
if (!dir || !file) {
  console.error("usage: validate.mjs NODE_MODULES_PARENT openapi.json");
  process.exit(2);
}
const require = createRequire(path.join(path.resolve(dir), "package.json"));
const SwaggerParser = require("@apidevtools/swagger-parser");
const version = require("@apidevtools/swagger-parser/package.json").version;

try {
  const api = await SwaggerParser.validate(path.resolve(file));
  const ops = Object.values(api.paths ?? {}).reduce(
    (n, item) => n + Object.keys(item).filter((k) => /^(get|put|post|delete|patch|options|head|trace)$/.test(k)).length, 0);
  console.log(`swagger-parser ${version}: ${file} is valid OpenAPI ${api.openapi} ` +
    `(${Object.keys(api.paths ?? {}).length} paths, ${ops} operations)`);
} catch (e) {
  console.error(`swagger-parser ${version}: ${file} is NOT valid:\n${e.message}`);
  if (Array.isArray(e.details)) console.error(JSON.stringify(e.details, null, 1).slice(0, 20000));
  process.exit(1);
}
