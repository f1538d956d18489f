#!/usr/bin/env node
// Reference LLaMA-2 token ids from the `llama-tokenizer-js` package's own
// JavaScript tokenizer, for v2l-llm's tokenizer tests.
//
// Run by hand (never in CI); normally called by scripts/gen_llm_tokenizer_fixtures.py:
//
//     node scripts/gen_llama2_tokenizer_reference.mjs LLAMA_TOKENIZER_JS STRINGS_JSON OUT_JSON
//
// LLAMA_TOKENIZER_JS is `package/llama-tokenizer.js` of llama-tokenizer-js@1.2.2 (the
// `llama2-vocab` asset, cached as `$V2L_HOME/assets/llama2-vocab/llama-tokenizer.js`).
// STRINGS_JSON is a JSON array of strings. OUT_JSON receives, for each string, the ids of
// `encode(text, add_bos_token=true, add_preceding_space=true)` and the package's own
// `decode(ids)` of them.
//
// The module is an ES module with a `.js` name outside any package.json, so it is copied to
// a temporary `.mjs` file before being imported.

import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [jsPath, stringsPath, outPath] = process.argv.slice(2);
if (!outPath) {
  console.error("usage: gen_llama2_tokenizer_reference.mjs LLAMA_TOKENIZER_JS STRINGS_JSON OUT_JSON");
  process.exit(2);
}

const sha256 = createHash("sha256").update(readFileSync(jsPath)).digest("hex");
const dir = mkdtempSync(join(tmpdir(), "llama-tokenizer-js-"));
const module = join(dir, "llama-tokenizer.mjs");
copyFileSync(jsPath, module);
const { default: tokenizer } = await import(pathToFileURL(module).href);
rmSync(dir, { recursive: true, force: true });

// The package's own self-test (throws on failure).
tokenizer.defaultTests(tokenizer);

const strings = JSON.parse(readFileSync(stringsPath, "utf8"));
const cases = strings.map((text) => {
  const ids = tokenizer.encode(text, true, true);
  return { text, ids, decoded: tokenizer.decode(ids, true, true) };
});
writeFileSync(
  outPath,
  JSON.stringify({ package: "llama-tokenizer-js@1.2.2", sha256, node: process.version, cases }),
);
console.log(`${cases.length} strings -> ${outPath}`);
