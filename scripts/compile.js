#!/usr/bin/env node
// Compile contracts/*.sol with the pinned solc-js into src/fedledger/ledger/artifacts/<Name>.json
// (ABI + bytecode + the SHA-256 of the sources and settings, used by the staleness test).
// Usage: node scripts/compile.js [OUT_DIR [EXTRA_SRC_DIR]]
// EXTRA_SRC_DIR adds contracts that import "contracts/..." (benchmark variants); they are not
// part of the fingerprint.
"use strict";
const fs = require("fs");
const path = require("path");
const crypto = require("crypto");
const solc = require("solc");

const root = path.resolve(__dirname, "..");
const srcDir = path.join(root, "contracts");
const outDir = path.resolve(process.argv[2] || path.join(root, "src/fedledger/ledger/artifacts"));
const SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: "cancun",
  outputSelection: {
    "*": {
      "*": [
        "abi",
        "evm.bytecode.object",
        "evm.deployedBytecode.object",
        "evm.deployedBytecode.immutableReferences",
      ],
    },
  },
};

const files = fs.readdirSync(srcDir).filter((f) => f.endsWith(".sol")).sort();
const sources = {};
for (const f of files) sources[`contracts/${f}`] = { content: fs.readFileSync(path.join(srcDir, f), "utf8") };
const extraDir = process.argv[3] ? path.resolve(process.argv[3]) : null;
const extra = extraDir ? fs.readdirSync(extraDir).filter((f) => f.endsWith(".sol")).sort() : [];
for (const f of extra) sources[`extra/${f}`] = { content: fs.readFileSync(path.join(extraDir, f), "utf8") };

function findImports(p) {
  for (const base of [path.join(root, "node_modules"), root]) {
    const full = path.join(base, p);
    if (fs.existsSync(full)) return { contents: fs.readFileSync(full, "utf8") };
  }
  return { error: `import not found: ${p} (run npm ci)` };
}

const input = { language: "Solidity", sources, settings: SETTINGS };
const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const e of output.errors || []) console.error(e.formattedMessage);
if (errors.length) process.exit(1);

// the fingerprint the Python staleness test recomputes: sources (sorted by name) + settings + compiler
const h = crypto.createHash("sha256");
for (const f of files) h.update(`${f}\n`).update(sources[`contracts/${f}`].content);
h.update(JSON.stringify(SETTINGS)).update(solc.version());
const sourceHash = h.digest("hex");

fs.mkdirSync(outDir, { recursive: true });
const units = [...files.map((f) => `contracts/${f}`), ...extra.map((f) => `extra/${f}`)];
for (const unit of units) {
  for (const [name, c] of Object.entries(output.contracts[unit] || {})) {
    const art = {
      contractName: name,
      sourceFile: unit,
      compiler: solc.version(),
      settings: SETTINGS,
      sourceHash,
      abi: c.abi,
      bytecode: "0x" + c.evm.bytecode.object,
      deployedBytecode: "0x" + c.evm.deployedBytecode.object,
      // byte ranges of immutables in the deployed code (filled in at deployment)
      immutableReferences: c.evm.deployedBytecode.immutableReferences || {},
    };
    fs.writeFileSync(path.join(outDir, `${name}.json`), JSON.stringify(art, null, 1) + "\n");
    console.log(`wrote ${path.relative(root, path.join(outDir, name + ".json"))}`);
  }
}
