// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {FedLedger} from "contracts/FedLedger.sol";

/// @notice The other design, for measurement only (benchmarks/signature_designs.py): every
/// posted commitment's signature is checked on-chain, and a bad one reverts the batch. It keeps
/// the client addresses by index, which that check needs (FedLedger itself stores none).
contract FedLedgerVerified is FedLedger {
    address[] private _byIndex;

    constructor(Params memory p) FedLedger(p) {}

    function _register(bytes calldata clients) internal override {
        super._register(clients);
        for (uint256 off = 0; off < clients.length; off += 20) _byIndex.push(address(bytes20(clients[off:off + 20])));
    }

    function _checkBatchSignatures(uint256 round, bytes calldata packed) internal view override {
        bytes32 base = _baseOf(round);
        for (uint256 off = 0; off < packed.length; off += PACKED_COMMITMENT_SIZE) {
            bytes calldata e = packed[off:off + PACKED_COMMITMENT_SIZE];
            address client = _byIndex[uint32(bytes4(e[0:4]))];
            if (!_validSignature(round, base, e, client)) revert FedLedgerBadSignature(round, client);
        }
    }
}
