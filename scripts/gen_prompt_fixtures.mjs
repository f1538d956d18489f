#!/usr/bin/env node
// Independent construction of V2L prompt token sequences with the
// `llama-tokenizer-js` package's own LLaMA-2 tokenizer (not HF `tokenizers`),
// for v2l-prompt's tests. The strings are the ones the spec
// (`spec/v2l-official.md` §5.2 and §5.4) gives for the reference's prompts;
// every segment is encoded separately with the SentencePiece dummy-prefix
// space (`encode(text, add_bos, add_preceding_space=true)`), BOS only on the
// first segment, as the reference's `Tokenizer.encode` calls do.
//
// Run by hand (never in CI):
//
//     node scripts/gen_prompt_fixtures.mjs $V2L_HOME/assets/llama2-vocab/llama-tokenizer.js \
//         crates/v2l-prompt/tests/fixtures/prompts.json
//
// Fixed inputs: one 2-way 2-shot episode (classes goldfish / house_finch,
// made-up visual texts), both instruction styles, the constrained-decoding
// candidates (name ids + EOS 2), and one restoration step (10 examples of 16
// input ids and 2 output ids, a 16-id query), plus one deblur-style step
// (2-id inputs).

import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [jsPath, outPath] = process.argv.slice(2);
if (!outPath) {
  console.error("usage: gen_prompt_fixtures.mjs LLAMA_TOKENIZER_JS OUT_JSON");
  process.exit(2);
}
const sha256 = createHash("sha256").update(readFileSync(jsPath)).digest("hex");
const dir = mkdtempSync(join(tmpdir(), "llama-tokenizer-js-"));
const module = join(dir, "llama-tokenizer.mjs");
copyFileSync(jsPath, module);
const { default: tok } = await import(pathToFileURL(module).href);
rmSync(dir, { recursive: true, force: true });
tok.defaultTests(tok);

const enc = (text, bos) => tok.encode(text, bos, true);
const IN = "###\nInput: < ";
const OUT = " >\nOutput: ";

// ---- few-shot classification (spec §5.2)
const support = [
  { visual: "birdfinchredbranch", label: "house_finch" },
  { visual: "goldfishorangefinwater", label: "goldfish" },
  { visual: "finchsparrowseedfeeder", label: "house_finch" },
  { visual: "aquariumgoldfishbowl", label: "goldfish" },
];
const query = { visual: "fishtankorangescales", target: "goldfish" };
const instructions = {
  faithful:
    "For each of the following input output pairs, output is one of ['goldfish' or ['house_finch']\n",
  corrected:
    "For each of the following input output pairs, output is one of ['goldfish', 'house_finch']\n",
};
const fewshot = {};
for (const [style, instruction] of Object.entries(instructions)) {
  let ids = enc(instruction, true);
  for (const s of support) {
    ids = ids.concat(enc(IN, false), enc(s.visual, false), enc(OUT, false), enc(s.label, false));
  }
  ids = ids.concat(enc(IN, false), enc(query.visual, false), enc(OUT, false));
  fewshot[style] = ids;
}
const candidates = ["goldfish", "house_finch"].map((n) => enc(n, false).concat([2]));

// ---- restoration steps (spec §5.4)
const instruction = "Learning a new language and predict the 2 tokens following the examples.\n";
const restore = (inLen) => {
  const examples = [];
  for (let i = 0; i < 10; i++) {
    const input = Array.from({ length: inLen }, (_, j) => (1000 + 977 * i + 131 * j) % 32000);
    const output = [(5000 + 17 * i) % 32000, (7000 + 29 * i) % 32000];
    examples.push({ input, output });
  }
  const queryInput = Array.from({ length: inLen }, (_, j) => (20000 + 71 * j) % 32000);
  let ids = enc(instruction, true);
  for (const e of examples) ids = ids.concat(enc(IN, false), e.input, enc(OUT, false), e.output);
  ids = ids.concat(enc(IN, false), queryInput, enc(OUT, false));
  return { examples, query_input: queryInput, ids };
};

writeFileSync(
  outPath,
  JSON.stringify(
    {
      package: "llama-tokenizer-js@1.2.2",
      sha256,
      node: process.version,
      fewshot: { support, query, instructions, ids: fewshot, candidates },
      restore_inpainting: restore(16),
      restore_deblur: restore(2),
    },
    null,
    1,
  ),
);
console.log(`wrote ${outPath}`);
