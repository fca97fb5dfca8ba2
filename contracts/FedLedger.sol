// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {IFedLedger} from "./IFedLedger.sol";

/// @title FedLedger: the on-chain record of a federated-learning run, enforcing its rounds
/// @notice Records, round by round, the selected clients, every client's signed commitment to
/// its update (content hash + sample count, bound to the round and its base model), an optional
/// committee's signed votes, and the aggregator's result: the new global-model hash and, for
/// every commitment, whether it entered the aggregation or why it was rejected.
/// @dev What the contract refuses (docs/threat-model.md lists who tries what):
/// - commitments from unregistered or unselected clients, a client's second commitment in a
///   round, zero sample counts;
/// - finalizing before the submission window has closed, without one known outcome per
///   commitment, or using a commitment the committee did not accept by majority;
/// - rounds out of order or two rounds open at once; selecting an excluded client; naming a
///   committee twice or before the window closed; votes that do not bind the round's final
///   commitments digest or are not the member's.
/// Posted commitments' signatures are checked optimistically: the batch's hash is kept, and
/// anyone can make the contract check one posted signature (`proveBadSignature`); a bad one
/// marks the round fraudulent and halts the ledger. Checking every signature on-chain instead
/// costs ~4k more gas per commitment and, on py-evm, more than doubles the time of a batch
/// (docs/threat-model.md, "Signature checks": measured by benchmarks/signature_designs.py).
/// Commitments are posted as packed calldata bound by a running digest, not stored; per client
/// and round the contract keeps two bits (selected, committed).
contract FedLedger is IFedLedger, AccessControl, EIP712 {
    /// @notice Role allowed to open and finalize rounds, post commitments and relay votes.
    bytes32 public constant AGGREGATOR_ROLE = keccak256("AGGREGATOR_ROLE");
    /// @notice EIP-712 type hash of a client's commitment.
    bytes32 public constant COMMITMENT_TYPEHASH =
        keccak256("Commitment(uint256 round,bytes32 baseModelHash,bytes32 updateHash,uint64 numSamples)");
    /// @notice EIP-712 type hash of a committee member's vote.
    bytes32 public constant VOTE_TYPEHASH =
        keccak256("Vote(uint256 round,bytes32 commitmentsDigest,bytes accept)");
    /// @notice One packed commitment: clientIndex(4) | updateHash(32) | numSamples(8) | r(32) | vs(32)
    /// (the client by its registration index: no storage read per commitment).
    uint256 public constant PACKED_COMMITMENT_SIZE = 108;
    /// @notice One packed vote: member(20) | r(32) | vs(32) | accept (one byte per commitment).
    uint256 public constant PACKED_VOTE_HEADER = 84;
    /// @notice Largest outcome code (codes are listed in fedledger.protocol.outcomes).
    uint8 public constant MAX_OUTCOME = 8;

    // why a scanned batch or outcome list was refused (internal codes of the scans below)
    uint256 private constant _NOT_ASCENDING = 2;
    uint256 private constant _NOT_SELECTED = 3;
    uint256 private constant _DUPLICATE = 4;
    uint256 private constant _ZERO_SAMPLES = 5;
    uint256 private constant _UNKNOWN_CLIENT = 6;
    uint256 private constant _UNKNOWN_OUTCOME = 8;
    uint256 private constant _NOT_ACCEPTED = 9;

    bytes32 private immutable _configHash;
    bytes32 private immutable _initialModelHash;
    bytes32 private immutable _selectionSalt;
    address private immutable _aggregator;
    uint32 private immutable _clientsPerRound;
    uint32 private immutable _committeeSize;
    uint32 private immutable _maxFlags;
    uint64 private immutable _submissionWindow;
    uint64 private immutable _roundTimeout;

    bytes32 private _currentModelHash;
    uint256 private _nextRound;
    uint256 private _haltedBy; // fraudulent round + 1, or 0
    uint256 private _numClients;
    mapping(address client => uint256) private _slot; // registration index + 1
    uint256 private _numExcluded;
    mapping(uint256 index => uint256) private _flags;
    mapping(uint256 word => uint256) private _excluded;
    /// A round's state: the scalars share one storage slot.
    struct Round {
        Status status;
        uint32 numSelected;
        uint32 numCommitments;
        uint8 committeeSize;
        uint8 numVotes;
        uint16 numBatches;
        bool fraudulent;
        uint64 openedAt;
        uint64 windowEnd;
        bytes32 baseModelHash;
        bytes32 commitmentsDigest;
        bytes32 globalModelHash;
    }

    mapping(uint256 round => Round) private _rounds;
    mapping(uint256 round => mapping(uint256 word => uint256)) private _selected;
    mapping(uint256 round => mapping(uint256 word => uint256)) private _committed;
    mapping(uint256 round => mapping(uint256 word => uint256)) private _members;
    mapping(uint256 round => mapping(uint256 word => uint256)) private _voted;
    mapping(uint256 round => mapping(uint256 batch => bytes32)) private _batchHash;
    mapping(uint256 round => bytes) private _tally; // accept votes, one byte per commitment

    /// @param p The run's parameters; the deployer becomes the admin (requester), which must
    /// not be the aggregator.
    constructor(Params memory p) EIP712("FedLedger", "2") {
        if (p.aggregator == address(0)) revert FedLedgerZeroAddress();
        if (p.aggregator == msg.sender) revert FedLedgerBadParameters("aggregator is the admin");
        if (p.clientsPerRound == 0) revert FedLedgerBadParameters("clientsPerRound is 0");
        if (p.committeeSize > 255) revert FedLedgerBadParameters("committeeSize exceeds 255");
        if (p.roundTimeout <= p.submissionWindow)
            revert FedLedgerBadParameters("roundTimeout must exceed submissionWindow");
        _configHash = p.configHash;
        _initialModelHash = p.initialModelHash;
        _selectionSalt = p.selectionSalt;
        _aggregator = p.aggregator;
        _clientsPerRound = p.clientsPerRound;
        _committeeSize = p.committeeSize;
        _maxFlags = p.maxFlags;
        _submissionWindow = p.submissionWindow;
        _roundTimeout = p.roundTimeout;
        _currentModelHash = p.initialModelHash;
        _grantRole(DEFAULT_ADMIN_ROLE, msg.sender);
        _grantRole(AGGREGATOR_ROLE, p.aggregator);
        emit LedgerCreated(p.configHash, p.initialModelHash, p);
    }

    // ================================================================== roles
    /// @notice Roles are fixed at deployment: one admin (the deployer) and one aggregator, never
    /// the same account, never a client. Granting or revoking a role always reverts.
    function grantRole(bytes32, address) public virtual override {
        revert FedLedgerRolesFixed();
    }

    /// @notice See grantRole.
    function revokeRole(bytes32, address) public virtual override {
        revert FedLedgerRolesFixed();
    }

    // ================================================================== admin
    /// @notice Admit client keys to the federation; each gets the next registration index.
    /// @param clients Addresses, 20 bytes each, back to back.
    /// Requirements:
    /// - the caller has DEFAULT_ADMIN_ROLE;
    /// - no address is zero, already registered, or the aggregator's.
    function registerClients(bytes calldata clients) external virtual onlyRole(DEFAULT_ADMIN_ROLE) {
        _countPacked(clients, 20);
        _register(clients);
    }

    function _register(bytes calldata clients) internal virtual {
        uint256 n = _numClients;
        uint256 slotMap;
        address aggregator = _aggregator;
        bytes32 topic = ClientRegistered.selector;
        uint256 bad = type(uint256).max;
        assembly ("memory-safe") {
            slotMap := _slot.slot
            for {
                let off := 0
            } lt(off, clients.length) {
                off := add(off, 20)
            } {
                let c := shr(96, calldataload(add(clients.offset, off)))
                mstore(0, c)
                mstore(0x20, slotMap)
                let slot := keccak256(0, 0x40)
                if or(or(iszero(c), eq(c, aggregator)), sload(slot)) {
                    bad := off
                    break
                }
                n := add(n, 1)
                sstore(slot, n)
                // emit ClientRegistered(c, index)
                mstore(0, sub(n, 1))
                log2(0, 0x20, topic, c)
            }
        }
        if (bad != type(uint256).max) {
            address c = address(bytes20(clients[bad:bad + 20]));
            if (c == address(0)) revert FedLedgerZeroAddress();
            if (c == aggregator) revert FedLedgerBadParameters("the aggregator cannot be a client");
            revert FedLedgerAlreadyRegistered(c);
        }
        _numClients = n;
    }

    // ================================================================== rounds
    /// @notice Open round `round` on the current global model for the selected clients.
    /// @param selected A bitmap of registration indices: 32-byte words, word w holding indices
    /// 256w..256w+255, index 256w + i in bit i (least significant first).
    /// Requirements:
    /// - the caller has AGGREGATOR_ROLE; the ledger is not halted;
    /// - `round` is the next round and the previous one is finalized or aborted;
    /// - `baseModelHash` is the current global model;
    /// - at most `clientsPerRound` clients, each registered and not excluded.
    /// @param packed Optionally the round's first batch of commitments, posted as by
    /// postCommitments in the same transaction (empty: none).
    function openRound(
        uint256 round,
        bytes32 baseModelHash,
        bytes calldata selected,
        bytes calldata packed
    ) external virtual onlyRole(AGGREGATOR_ROLE) {
        _open(round, baseModelHash, selected, packed);
    }

    function _open(
        uint256 round,
        bytes32 baseModelHash,
        bytes calldata selected,
        bytes calldata packed
    ) internal {
        _requireNotHalted();
        if (round != _nextRound) revert FedLedgerRoundOutOfOrder(round, _nextRound);
        if (round > 0 && _rounds[round - 1].status == Status.Open)
            revert FedLedgerPreviousRoundOpen(round - 1);
        if (baseModelHash != _currentModelHash)
            revert FedLedgerBaseModelMismatch(round, _currentModelHash, baseModelHash);
        uint256 k = _storeBitmap(round, _selected[round], selected);
        if (k > _clientsPerRound) revert FedLedgerTooManySelected(round, _clientsPerRound, k);
        _nextRound = round + 1;
        Round storage r = _rounds[round];
        r.status = Status.Open;
        r.numSelected = uint32(k);
        r.openedAt = uint64(block.number);
        r.windowEnd = uint64(block.number) + _submissionWindow;
        r.baseModelHash = baseModelHash;
        emit RoundOpened(round, baseModelHash, selectionSeed(round, baseModelHash), selected);
        if (packed.length != 0) _post(round, r, packed);
    }

    /// @notice Post a batch of client-signed commitments; the submission window then closes
    /// `submissionWindow` blocks after this block.
    /// @param packed PACKED_COMMITMENT_SIZE bytes per commitment.
    /// Requirements:
    /// - the caller has AGGREGATOR_ROLE; the ledger is not halted; the round is open and its
    ///   window has not closed;
    /// - entries in strictly ascending order of registration index, each of a registered,
    ///   selected client that has no commitment in the round yet, with a non-zero sample count.
    /// Each entry must carry the client's EIP-712 signature; that is checked on demand
    /// (`proveBadSignature`), not here.
    function postCommitments(
        uint256 round,
        bytes calldata packed
    ) external virtual onlyRole(AGGREGATOR_ROLE) {
        _requireNotHalted();
        Round storage r = _requireOpen(round);
        _requireWindowOpen(round, r);
        _post(round, r, packed);
    }

    function _post(uint256 round, Round storage r, bytes calldata packed) internal {
        uint256 n = _countPacked(packed, PACKED_COMMITMENT_SIZE);
        _admitBatch(round, packed);
        _checkBatchSignatures(round, packed);
        bytes32 h = keccak256(packed);
        _batchHash[round][r.numBatches] = h;
        r.numBatches += 1;
        uint256 first = r.numCommitments;
        r.numCommitments = uint32(first + n);
        r.commitmentsDigest = keccak256(abi.encodePacked(r.commitmentsDigest, h));
        r.windowEnd = uint64(block.number) + _submissionWindow;
        emit CommitmentsPosted(round, first, packed, r.windowEnd);
    }

    /// @notice A selected client records its own commitment (e.g. when the aggregator left it out).
    /// Requirements:
    /// - the ledger is not halted; the round is open and its window has not closed;
    /// - the caller is a registered, selected client without a commitment in the round;
    /// - `numSamples` is not zero.
    function submitCommitment(uint256 round, bytes32 updateHash, uint64 numSamples) external virtual {
        _requireNotHalted();
        Round storage r = _requireOpen(round);
        _requireWindowOpen(round, r);
        uint256 s = _slot[msg.sender];
        if (s == 0) revert FedLedgerNotRegistered(msg.sender);
        if (!_isSet(_selected[round], s - 1)) revert FedLedgerNotSelected(round, s - 1);
        if (_isSet(_committed[round], s - 1)) revert FedLedgerDuplicateCommitment(round, s - 1);
        if (numSamples == 0) revert FedLedgerZeroSamples(round, s - 1);
        _setBit(_committed[round], s - 1);
        uint256 index = r.numCommitments;
        r.numCommitments = uint32(index + 1);
        r.commitmentsDigest = keccak256(
            abi.encodePacked(r.commitmentsDigest, msg.sender, updateHash, numSamples)
        );
        emit CommitmentSubmitted(round, index, msg.sender, updateHash, numSamples);
    }

    /// @notice Prove that a posted commitment's signature is not its client's: the contract
    /// checks it, marks the round fraudulent and halts the ledger. Anyone may call it, at any
    /// time after the batch was posted.
    /// @param batch The batch's number in the round (0 for the first postCommitments call).
    /// @param position The commitment's position in that batch.
    /// @param packed The batch exactly as posted (it must hash to the kept batch hash).
    /// @param client The address registered under the commitment's client index.
    /// Requirements:
    /// - `packed` is batch `batch` of `round`, `position` is inside it, `client` is the
    ///   commitment's client;
    /// - the signature at `position` is invalid for (round, base model, update hash, samples).
    function proveBadSignature(
        uint256 round,
        uint256 batch,
        uint256 position,
        bytes calldata packed,
        address client
    ) external virtual {
        Round storage r = _rounds[round];
        if (batch >= r.numBatches || keccak256(packed) != _batchHash[round][batch])
            revert FedLedgerUnknownBatch(round, batch);
        if (position >= packed.length / PACKED_COMMITMENT_SIZE) revert FedLedgerBadPosition(round, position);
        bytes calldata e = packed[position * PACKED_COMMITMENT_SIZE:(position + 1) * PACKED_COMMITMENT_SIZE];
        uint256 idx = uint32(bytes4(e[0:4]));
        if (_slot[client] != idx + 1) revert FedLedgerWrongClient(idx, client);
        if (_validSignature(round, r.baseModelHash, e, client)) revert FedLedgerSignatureValid(round, idx);
        r.fraudulent = true;
        if (_haltedBy == 0) _haltedBy = round + 1;
        emit FraudProven(round, batch, position, idx, msg.sender);
    }

    /// @notice Name the round's validation committee, once, after the submission window.
    /// @param members A bitmap of registration indices (as in openRound).
    /// Requirements:
    /// - the caller has AGGREGATOR_ROLE; the run has a committee; the ledger is not halted; the
    ///   round is open, its window closed and no committee named yet;
    /// - exactly min(committeeSize, eligible clients) registered, non-excluded members.
    function selectCommittee(
        uint256 round,
        bytes calldata members
    ) external virtual onlyRole(AGGREGATOR_ROLE) {
        if (_committeeSize == 0) revert FedLedgerNoCommitteeConfigured();
        _requireNotHalted();
        Round storage r = _requireOpen(round);
        _requireWindowClosed(round, r);
        if (r.committeeSize != 0) revert FedLedgerCommitteeAlreadySelected(round);
        uint256 k = _storeBitmap(round, _members[round], members);
        uint256 eligible = _numClients - _numExcluded;
        uint256 expected = eligible < _committeeSize ? eligible : _committeeSize;
        if (k == 0 || k != expected) revert FedLedgerCommitteeSize(round, expected, k);
        r.committeeSize = uint8(k);
        emit CommitteeSelected(round, members);
    }

    /// @notice Relay committee members' signed votes on the round's commitments and tally them.
    /// @param votes Packed votes back to back, each PACKED_VOTE_HEADER + numCommitments bytes,
    /// signed as EIP-712 `Vote(round, commitmentsDigest, accept)`.
    /// Requirements:
    /// - the caller has AGGREGATOR_ROLE; the ledger is not halted; the round is open and its
    ///   committee named;
    /// - each vote is by a member that has not voted, validly signed over the round's final
    ///   commitments digest, with accept bytes of 0 or 1.
    function postVotes(uint256 round, bytes calldata votes) external virtual onlyRole(AGGREGATOR_ROLE) {
        _requireNotHalted();
        Round storage r = _requireOpen(round);
        if (r.committeeSize == 0) revert FedLedgerCommitteeNotSelected(round);
        uint256 n = r.numCommitments;
        uint256 unit = PACKED_VOTE_HEADER + n;
        uint256 count = _countPacked(votes, unit);
        bytes memory tally = _tally[round];
        if (tally.length == 0) tally = new bytes(n);
        bytes32 digest = r.commitmentsDigest;
        for (uint256 off = 0; off < votes.length; off += unit) {
            _recordVote(round, digest, votes[off:off + unit], tally);
        }
        _tally[round] = tally;
        r.numVotes += uint8(count);
    }

    /// @notice Close a round with its result: one outcome byte per recorded commitment.
    /// @param outcomes outcomes[i] is 0 when commitment i entered the aggregation rule, else a
    /// rejection reason code (1..MAX_OUTCOME).
    /// @param flagged Registration indices (4 bytes each, strictly ascending) of the clients
    /// that the rule, a check or the committee excluded; each must have committed this round.
    /// Requirements:
    /// - the caller has AGGREGATOR_ROLE; the ledger is not halted; the round is open and its
    ///   submission window closed;
    /// - one known outcome per commitment; with a committee, it was named and every used
    ///   commitment has the votes of more than half of it.
    function finalizeRound(
        uint256 round,
        bytes32 globalModelHash,
        bytes calldata outcomes,
        bytes calldata flagged
    ) external virtual onlyRole(AGGREGATOR_ROLE) {
        _finalize(round, globalModelHash, outcomes, flagged);
    }

    /// @notice `finalizeRound(round, globalModelHash, outcomes, flagged)` and then
    /// `openRound(round + 1, globalModelHash, selected, packed)`, in one transaction: the next
    /// round opens on the model just finalized. Atomic: if either part reverts, neither happens.
    /// Requirements: those of both calls.
    function finalizeAndOpen(
        uint256 round,
        bytes32 globalModelHash,
        bytes calldata outcomes,
        bytes calldata flagged,
        bytes calldata selected,
        bytes calldata packed
    ) external virtual onlyRole(AGGREGATOR_ROLE) {
        _finalize(round, globalModelHash, outcomes, flagged);
        _open(round + 1, globalModelHash, selected, packed);
    }

    function _finalize(
        uint256 round,
        bytes32 globalModelHash,
        bytes calldata outcomes,
        bytes calldata flagged
    ) internal {
        _requireNotHalted();
        Round storage r = _requireOpen(round);
        _requireWindowClosed(round, r);
        if (outcomes.length != r.numCommitments)
            revert FedLedgerOutcomesMismatch(round, r.numCommitments, outcomes.length);
        if (_committeeSize != 0 && r.committeeSize == 0) revert FedLedgerCommitteeNotSelected(round);
        _checkOutcomes(round, r.committeeSize, outcomes);
        _countPacked(flagged, 4);
        _flag(round, flagged);
        r.status = Status.Finalized;
        r.globalModelHash = globalModelHash;
        _currentModelHash = globalModelHash;
        emit RoundFinalized(round, globalModelHash, outcomes);
    }

    /// @notice Abort a round that was not finalized in time; the global model stays as it was.
    /// Requirements:
    /// - the round is open and more than `roundTimeout` blocks have passed since it opened.
    function abortRound(uint256 round) external virtual {
        Round storage r = _requireOpen(round);
        uint256 deadline = uint256(r.openedAt) + _roundTimeout;
        if (block.number <= deadline) revert FedLedgerDeadlineNotReached(round, deadline);
        r.status = Status.Aborted;
        emit RoundAborted(round, msg.sender);
    }

    // ================================================================== views
    /// @notice The parameters fixed at deployment.
    function params() external view returns (Params memory) {
        return
            Params({
                configHash: _configHash,
                initialModelHash: _initialModelHash,
                selectionSalt: _selectionSalt,
                aggregator: _aggregator,
                clientsPerRound: _clientsPerRound,
                committeeSize: _committeeSize,
                maxFlags: _maxFlags,
                submissionWindow: _submissionWindow,
                roundTimeout: _roundTimeout
            });
    }

    /// @notice The seed a round's selection is drawn from, fixed once the previous round's
    /// global model is: keccak256(abi.encode(selectionSalt, round, baseModelHash)).
    function selectionSeed(uint256 round, bytes32 baseModelHash) public view returns (bytes32) {
        return keccak256(abi.encode(_selectionSalt, round, baseModelHash));
    }

    /// @notice Summary of a round.
    function roundInfo(uint256 round) external view returns (RoundInfo memory info) {
        Round storage r = _rounds[round];
        info = RoundInfo({
            status: r.status,
            numSelected: r.numSelected,
            numCommitments: r.numCommitments,
            committeeSize: r.committeeSize,
            numVotes: r.numVotes,
            numBatches: r.numBatches,
            fraudulent: r.fraudulent,
            openedAt: r.openedAt,
            windowEnd: r.windowEnd,
            baseModelHash: r.baseModelHash,
            selectionSeed: r.status == Status.None ? bytes32(0) : selectionSeed(round, r.baseModelHash),
            commitmentsDigest: r.commitmentsDigest,
            globalModelHash: r.globalModelHash
        });
    }

    /// @notice The kept hash of a posted batch (for fraud proofs).
    function batchHash(uint256 round, uint256 batch) external view returns (bytes32) {
        return _batchHash[round][batch];
    }

    /// @notice The fraudulent round that halted the ledger, plus one (0: not halted).
    function haltedBy() external view returns (uint256) {
        return _haltedBy;
    }

    /// @notice Hash of the newest global model (the initial one before a round is finalized).
    function currentModelHash() external view returns (bytes32) {
        return _currentModelHash;
    }

    /// @notice SHA-256 of the run's resolved configuration.
    function configHash() external view returns (bytes32) {
        return _configHash;
    }

    /// @notice Number of rounds opened so far.
    function roundCount() external view returns (uint256) {
        return _nextRound;
    }

    /// @notice Number of registered clients.
    function clientCount() external view returns (uint256) {
        return _numClients;
    }

    /// @notice Whether `client` is registered, and its registration index.
    function indexOf(address client) external view returns (bool registered, uint256 index) {
        uint256 s = _slot[client];
        return (s != 0, s == 0 ? 0 : s - 1);
    }

    /// @notice Whether `client` is selected in `round`.
    function isSelected(uint256 round, address client) external view returns (bool) {
        uint256 s = _slot[client];
        return s != 0 && _isSet(_selected[round], s - 1);
    }

    /// @notice Whether `client` has a commitment recorded in `round`.
    function hasCommitted(uint256 round, address client) external view returns (bool) {
        uint256 s = _slot[client];
        return s != 0 && _isSet(_committed[round], s - 1);
    }

    /// @notice Number of rounds in which `client` was flagged.
    function flagsOf(address client) public view returns (uint256) {
        uint256 s = _slot[client];
        return s == 0 ? 0 : _flags[s - 1];
    }

    /// @notice Reputation of a client: minus the number of rounds it was flagged in.
    function reputationOf(address client) external view returns (int256) {
        return -int256(flagsOf(client));
    }

    /// @notice Whether `client` has been excluded from selection for its flags.
    function isExcluded(address client) external view returns (bool) {
        uint256 s = _slot[client];
        return s != 0 && _isSet(_excluded, s - 1);
    }

    /// @notice Number of excluded clients.
    function excludedCount() external view returns (uint256) {
        return _numExcluded;
    }

    /// @notice How many committee members accepted each commitment of a round.
    function acceptVotes(uint256 round) external view returns (bytes memory) {
        return _tally[round];
    }

    /// @notice The EIP-712 digest a client signs for its commitment.
    function commitmentDigest(
        uint256 round,
        bytes32 baseModelHash,
        bytes32 updateHash,
        uint64 numSamples
    ) public view returns (bytes32) {
        return _commitmentDigest(_domainSeparatorV4(), round, baseModelHash, updateHash, numSamples);
    }

    /// @notice The EIP-712 digest a committee member signs for its vote.
    function voteDigest(
        uint256 round,
        bytes32 commitmentsDigest,
        bytes calldata accept
    ) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(VOTE_TYPEHASH, round, commitmentsDigest, keccak256(accept))));
    }

    /// @notice Whether (r, vs) is `client`'s signature of a commitment in `round` on the
    /// round's base model: the check a fraud proof makes, as a call anyone can run.
    function verifyCommitment(
        uint256 round,
        address client,
        bytes32 updateHash,
        uint64 numSamples,
        bytes32 r,
        bytes32 vs
    ) external view returns (bool) {
        bytes32 digest = commitmentDigest(round, _rounds[round].baseModelHash, updateHash, numSamples);
        (address signer, ECDSA.RecoverError err, ) = ECDSA.tryRecover(digest, r, vs);
        return err == ECDSA.RecoverError.NoError && signer == client;
    }

    // ================================================================== internals
    function _requireNotHalted() internal view {
        if (_haltedBy != 0) revert FedLedgerHalted(_haltedBy - 1);
    }

    function _requireOpen(uint256 round) internal view returns (Round storage r) {
        r = _rounds[round];
        if (r.status != Status.Open) revert FedLedgerRoundNotOpen(round);
    }

    function _requireWindowOpen(uint256 round, Round storage r) internal view {
        if (block.number > r.windowEnd) revert FedLedgerWindowClosed(round, r.windowEnd);
    }

    function _requireWindowClosed(uint256 round, Round storage r) internal view {
        if (block.number <= r.windowEnd) revert FedLedgerWindowOpen(round, r.windowEnd);
    }

    function _countPacked(bytes calldata packed, uint256 unit) internal pure returns (uint256) {
        if (packed.length % unit != 0) revert FedLedgerMalformedPacking(packed.length, unit);
        return packed.length / unit;
    }

    function _baseOf(uint256 round) internal view returns (bytes32) {
        return _rounds[round].baseModelHash;
    }

    /// Hook for signature checks at posting time: none here (fraud proofs instead); the
    /// measurement variant in benchmarks/contracts checks every signature.
    function _checkBatchSignatures(uint256 round, bytes calldata packed) internal view virtual {}

    /// Whether the packed commitment `e` carries `client`'s signature in `round`.
    function _validSignature(
        uint256 round,
        bytes32 base,
        bytes calldata e,
        address client
    ) internal view returns (bool) {
        bytes32 digest = _commitmentDigest(
            _domainSeparatorV4(),
            round,
            base,
            bytes32(e[4:36]),
            uint64(bytes8(e[36:44]))
        );
        (address signer, ECDSA.RecoverError err, ) = ECDSA.tryRecover(digest, bytes32(e[44:76]), bytes32(e[76:108]));
        return err == ECDSA.RecoverError.NoError && signer == client;
    }

    /// Check a batch's entries and mark their clients as committed; reverts with the custom
    /// error of the first bad entry. The common case is one branch-free assembly scan: per
    /// entry an order and a sample-count check folded into one flag, per 256-index bitmap word
    /// one check of the batch's bits against the selected and committed words; the words are
    /// written only once the whole batch is known good. A bad batch is scanned again entry by
    /// entry (`_rejectBatch`) to name its first bad entry.
    function _admitBatch(uint256 round, bytes calldata packed) internal {
        uint256 numClients = _numClients;
        bytes32 selBase = _innerSlot(_selected, round);
        bytes32 comBase = _innerSlot(_committed, round);
        uint256 bad;
        assembly ("memory-safe") {
            // (slot, word) pairs to write, kept past the free memory pointer until the end
            function check(w, bits, sel, com, out) -> flags, next {
                mstore(0, w)
                mstore(0x20, sel)
                let selWord := sload(keccak256(0, 0x40))
                mstore(0x20, com)
                let slot := keccak256(0, 0x40)
                let comWord := sload(slot)
                flags := or(and(bits, not(selWord)), and(bits, comWord))
                mstore(out, slot)
                mstore(add(out, 0x20), or(comWord, bits))
                next := add(out, 0x40)
            }
            let buf := mload(0x40)
            let out := buf
            let word := not(0)
            let bits := 0
            let next := 0 // the least index the next entry may have (strictly ascending)
            let end := add(packed.offset, packed.length)
            for {
                let p := packed.offset
            } lt(p, end) {
                p := add(p, 108)
            } {
                let idx := shr(224, calldataload(p))
                bad := or(bad, or(lt(idx, next), iszero(shr(192, calldataload(add(p, 36))))))
                let w := shr(8, idx)
                if iszero(eq(w, word)) {
                    if bits {
                        let f := 0
                        f, out := check(word, bits, selBase, comBase, out)
                        bad := or(bad, f)
                    }
                    word := w
                    bits := 0
                }
                bits := or(bits, shl(and(idx, 255), 1))
                next := add(idx, 1)
            }
            if bits {
                let f := 0
                f, out := check(word, bits, selBase, comBase, out)
                bad := or(bad, f)
            }
            bad := or(bad, gt(next, numClients))
            if iszero(bad) {
                for {
                    let q := buf
                } lt(q, out) {
                    q := add(q, 0x40)
                } {
                    sstore(mload(q), mload(add(q, 0x20)))
                }
            }
        }
        if (bad != 0) {
            _rejectBatch(round, packed);
            assert(false); // unreachable: every flag above is one of _rejectBatch's reverts
        }
    }

    /// Revert with the custom error of a bad batch's first bad entry (see _admitBatch); returns
    /// if it finds none.
    function _rejectBatch(uint256 round, bytes calldata packed) internal view {
        uint256 why;
        uint256 at;
        uint256 numClients = _numClients;
        bytes32 selBase = _innerSlot(_selected, round);
        bytes32 comBase = _innerSlot(_committed, round);
        assembly ("memory-safe") {
            let word := not(0)
            let selWord := 0
            let comWord := 0
            let prev := 0
            for {
                let off := 0
            } lt(off, packed.length) {
                off := add(off, 108)
            } {
                let p := add(packed.offset, off)
                let idx := shr(224, calldataload(p))
                if iszero(lt(idx, numClients)) {
                    why := 6 // _UNKNOWN_CLIENT
                    at := off
                    break
                }
                if and(gt(off, 0), iszero(gt(idx, prev))) {
                    why := 2 // _NOT_ASCENDING
                    at := off
                    break
                }
                let w := shr(8, idx)
                if iszero(eq(w, word)) {
                    word := w
                    mstore(0, w)
                    mstore(0x20, selBase)
                    selWord := sload(keccak256(0, 0x40))
                    mstore(0x20, comBase)
                    comWord := sload(keccak256(0, 0x40))
                }
                let mask := shl(and(idx, 255), 1)
                if iszero(and(selWord, mask)) {
                    why := 3 // _NOT_SELECTED
                    at := off
                    break
                }
                if and(comWord, mask) {
                    why := 4 // _DUPLICATE
                    at := off
                    break
                }
                if iszero(shr(192, calldataload(add(p, 36)))) {
                    why := 5 // _ZERO_SAMPLES
                    at := off
                    break
                }
                comWord := or(comWord, mask)
                prev := idx
            }
        }
        if (why != 0) {
            uint256 idx = uint32(bytes4(packed[at:at + 4]));
            if (why == _UNKNOWN_CLIENT) revert FedLedgerUnknownClient(idx);
            if (why == _NOT_ASCENDING) revert FedLedgerNotAscending(round, at / PACKED_COMMITMENT_SIZE);
            if (why == _NOT_SELECTED) revert FedLedgerNotSelected(round, idx);
            if (why == _DUPLICATE) revert FedLedgerDuplicateCommitment(round, idx);
            revert FedLedgerZeroSamples(round, idx);
        }
    }

    /// Store a bitmap of registration indices (see openRound) into `bits` and return how many
    /// indices it holds; reverts if it names an unknown or an excluded client. One storage
    /// write per non-zero word.
    function _storeBitmap(
        uint256 round,
        mapping(uint256 => uint256) storage bits,
        bytes calldata bitmap
    ) internal returns (uint256 count) {
        _countPacked(bitmap, 32);
        uint256 numClients = _numClients;
        for (uint256 w = 0; w < bitmap.length / 32; ++w) {
            uint256 v = uint256(bytes32(bitmap[32 * w:32 * w + 32]));
            if (v == 0) continue;
            if (256 * w + 256 > numClients) {
                uint256 valid = 256 * w >= numClients ? 0 : numClients - 256 * w;
                uint256 beyond = valid == 0 ? v : v >> valid;
                if (beyond != 0) revert FedLedgerUnknownClient(256 * w + valid + _lowestBit(beyond));
            }
            uint256 ex = v & _excluded[w];
            if (ex != 0) revert FedLedgerClientExcluded(round, 256 * w + _lowestBit(ex));
            bits[w] = v;
            count += _popcount(v);
        }
    }

    /// Number of set bits (SWAR: pairs, nibbles, bytes, then 16-bit lanes summed by a multiply).
    function _popcount(uint256 x) internal pure returns (uint256 c) {
        assembly ("memory-safe") {
            let m1 := 0x5555555555555555555555555555555555555555555555555555555555555555
            let m2 := 0x3333333333333333333333333333333333333333333333333333333333333333
            let m4 := 0x0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f
            let m8 := 0x00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff
            let h16 := 0x0001000100010001000100010001000100010001000100010001000100010001
            x := sub(x, and(shr(1, x), m1))
            x := add(and(x, m2), and(shr(2, x), m2))
            x := and(add(x, shr(4, x)), m4)
            x := and(add(x, shr(8, x)), m8)
            // 16 lanes of at most 16 each: their sum (at most 256) lands in the top lane
            c := shr(240, mul(x, h16))
        }
    }

    /// Index of the lowest set bit of a non-zero word.
    function _lowestBit(uint256 x) internal pure returns (uint256 i) {
        while (x & 1 == 0) {
            x >>= 1;
            ++i;
        }
    }

    /// The storage slot of `m[key]` when `m[key]` is itself a mapping.
    function _innerSlot(
        mapping(uint256 => mapping(uint256 => uint256)) storage m,
        uint256 key
    ) private pure returns (bytes32 slot) {
        assembly ("memory-safe") {
            mstore(0, key)
            mstore(0x20, m.slot)
            slot := keccak256(0, 0x40)
        }
    }

    /// EIP-712 digest of a commitment under domain separator `ds` (no memory allocation).
    function _commitmentDigest(
        bytes32 ds,
        uint256 round,
        bytes32 base,
        bytes32 updateHash,
        uint64 numSamples
    ) internal pure returns (bytes32 digest) {
        bytes32 typeHash = COMMITMENT_TYPEHASH;
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, typeHash)
            mstore(add(p, 0x20), round)
            mstore(add(p, 0x40), base)
            mstore(add(p, 0x60), updateHash)
            mstore(add(p, 0x80), numSamples)
            let structHash := keccak256(p, 0xa0)
            mstore(p, hex"19_01")
            mstore(add(p, 0x02), ds)
            mstore(add(p, 0x22), structHash)
            digest := keccak256(p, 0x42)
        }
    }

    /// Check one packed vote, mark its member as voted, add it to `tally`, emit it.
    function _recordVote(uint256 round, bytes32 digest, bytes calldata v, bytes memory tally) internal {
        address m = address(bytes20(v[0:20]));
        bytes calldata accept = v[PACKED_VOTE_HEADER:];
        uint256 s = _slot[m];
        if (s == 0 || !_isSet(_members[round], s - 1)) revert FedLedgerNotCommitteeMember(round, m);
        if (_isSet(_voted[round], s - 1)) revert FedLedgerAlreadyVoted(round, m);
        bytes32 h = _hashTypedDataV4(keccak256(abi.encode(VOTE_TYPEHASH, round, digest, keccak256(accept))));
        (address signer, ECDSA.RecoverError err, ) = ECDSA.tryRecover(h, bytes32(v[20:52]), bytes32(v[52:84]));
        if (err != ECDSA.RecoverError.NoError || signer != m) revert FedLedgerBadVoteSignature(round, m);
        for (uint256 i = 0; i < accept.length; ++i) {
            uint8 a = uint8(accept[i]);
            if (a > 1) revert FedLedgerMalformedVote(round, m);
            // a member votes once per commitment and a committee has fewer than 256 members
            unchecked {
                tally[i] = bytes1(uint8(tally[i]) + a);
            }
        }
        _setBit(_voted[round], s - 1);
        emit VoteRecorded(round, m, accept, bytes32(v[20:52]), bytes32(v[52:84]));
    }

    /// Every outcome is a known code; with a committee of `size`, every used one (0) has more
    /// than size / 2 accept votes.
    function _checkOutcomes(uint256 round, uint256 size, bytes calldata outcomes) internal view {
        if (size == 0 && _knownCodes(outcomes)) return; // the common case, 32 bytes at a time
        bytes memory tally = size != 0 ? _tally[round] : bytes("");
        uint256 why;
        uint256 at;
        uint256 maxOutcome = MAX_OUTCOME;
        assembly ("memory-safe") {
            let tallyLen := mload(tally)
            for {
                let i := 0
            } lt(i, outcomes.length) {
                i := add(i, 1)
            } {
                let code := byte(0, calldataload(add(outcomes.offset, i)))
                if gt(code, maxOutcome) {
                    why := 8 // _UNKNOWN_OUTCOME
                    at := i
                    break
                }
                if and(iszero(code), gt(size, 0)) {
                    let yes := 0
                    if lt(i, tallyLen) {
                        yes := byte(0, mload(add(add(tally, 0x20), i)))
                    }
                    if iszero(gt(mul(2, yes), size)) {
                        why := 9 // _NOT_ACCEPTED
                        at := i
                        break
                    }
                }
            }
        }
        if (why == _UNKNOWN_OUTCOME) revert FedLedgerUnknownOutcome(round, at, uint8(outcomes[at]));
        if (why == _NOT_ACCEPTED) revert FedLedgerNotAccepted(round, at);
    }

    /// Whether every byte is at most MAX_OUTCOME (8): no high nibble, and no low nibble of 9..15
    /// (a low nibble plus 7 reaches bit 4 exactly from 9 up; bytes cannot carry into each other).
    function _knownCodes(bytes calldata outcomes) internal pure returns (bool ok) {
        ok = true;
        assembly ("memory-safe") {
            let hi := 0xf0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0
            let lo := 0x0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f
            let sevens := 0x0707070707070707070707070707070707070707070707070707070707070707
            let bit4 := 0x1010101010101010101010101010101010101010101010101010101010101010
            let n := outcomes.length
            for {
                let i := 0
            } lt(i, n) {
                i := add(i, 32)
            } {
                let w := calldataload(add(outcomes.offset, i))
                let rest := sub(n, i)
                if lt(rest, 32) {
                    // keep only the bytes that belong to `outcomes`
                    w := and(w, not(sub(shl(mul(8, sub(32, rest)), 1), 1)))
                }
                if or(and(w, hi), and(add(and(w, lo), sevens), bit4)) {
                    ok := 0
                    break
                }
            }
        }
    }

    function _flag(uint256 round, bytes calldata flagged) internal {
        uint256 prev;
        for (uint256 off = 0; off < flagged.length; off += 4) {
            uint256 idx = uint32(bytes4(flagged[off:off + 4]));
            if (off > 0 && idx <= prev) revert FedLedgerNotAscending(round, off / 4);
            if (idx >= _numClients) revert FedLedgerUnknownClient(idx);
            if (!_isSet(_committed[round], idx)) revert FedLedgerFlagNotCommitted(round, idx);
            uint256 f = _flags[idx] + 1;
            _flags[idx] = f;
            emit ClientFlagged(round, idx, f);
            if (f == _maxFlags) {
                _setBit(_excluded, idx);
                ++_numExcluded;
                emit ClientExcluded(round, idx);
            }
            prev = idx;
        }
    }

    function _isSet(mapping(uint256 => uint256) storage bits, uint256 i) internal view returns (bool) {
        return (bits[i >> 8] >> (i & 255)) & 1 == 1;
    }

    function _setBit(mapping(uint256 => uint256) storage bits, uint256 i) internal {
        bits[i >> 8] |= 1 << (i & 255);
    }
}
