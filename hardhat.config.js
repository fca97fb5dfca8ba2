// Hardhat v2 is used only as a local JSON-RPC node for tests (`npx hardhat node`);
// contracts are compiled with solc-js by scripts/compile.js (Hardhat cannot download compilers here).
module.exports = {
  networks: {
    hardhat: { chainId: 31337, hardfork: "cancun", blockGasLimit: 30_000_000 },
  },
};
