// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @title FedLedger: the on-chain record of a federated-learning run
/// @notice Records, round by round, the selected clients, every client's signed commitment to its
/// update (content hash + sample count), and the aggregator's result: the new global-model hash
/// and, for every commitment, whether it was used or rejected (with a reason code).
/// @dev Clients sign EIP-712 `Commitment` messages off-chain. The aggregator posts a round's
/// signed commitments in one transaction as packed calldata (124 bytes each: client, update
/// hash, sample count, EIP-2098 signature r/vs), which the contract binds by hash and emits, so
/// the ledger cost per client is a few thousand gas rather than a storage write and an
/// ecrecover loop. Anyone can check a signature on-chain with `verifyCommitment`, and the auditor
/// checks them all. A client the aggregator left out records its own commitment with
/// `submitCommitment`. A round is only finalized with one outcome per recorded commitment, so
/// the aggregator cannot silently drop one; it cannot forge or alter one, since each carries the
/// client's signature, which also stops the client from denying it later.
contract FedLedger is AccessControl, EIP712 {
    /// @notice Role allowed to open and finalize rounds and to post signed commitments.
    bytes32 public constant AGGREGATOR_ROLE = keccak256("AGGREGATOR_ROLE");
    /// @notice EIP-712 type hash of a client's commitment.
    bytes32 public constant COMMITMENT_TYPEHASH =
        keccak256("Commitment(uint256 round,bytes32 updateHash,uint64 numSamples)");
    /// @notice EIP-712 type hash of a committee member's vote.
    bytes32 public constant VOTE_TYPEHASH = keccak256("Vote(uint256 round,bytes accept)");
    /// @notice Size of one packed commitment: address(20) | updateHash(32) | numSamples(8) | r(32) | vs(32).
    uint256 public constant PACKED_COMMITMENT_SIZE = 124;

    struct Round {
        bool open;
        bool finalized;
        uint32 numSelected;
        uint32 numCommitments;
        bytes32 baseModelHash;
        bytes32 selectedDigest;
        bytes32 commitmentsDigest;
        bytes32 globalModelHash;
        uint32 committeeSize;
        uint32 numVotes;
    }

    bytes32 private immutable _configHash;
    bytes32 private _currentModelHash;
    uint256 private _nextRound;
    uint256 private _numClients;
    mapping(address client => bool) private _registered;
    mapping(uint256 round => Round) private _rounds;
    mapping(uint256 round => mapping(address client => bool)) private _submittedDirectly;
    // committee validation (BFLC / VBFL): members, who voted, and the per-commitment tally
    mapping(uint256 round => mapping(address member => uint8)) private _member; // 1 member, 2 voted
    mapping(uint256 round => bytes) private _acceptVotes; // one counter byte per commitment
    mapping(address client => int256) private _reputation;

    error NotRegistered(address client);
    error AlreadyRegistered(address client);
    error RoundOutOfOrder(uint256 round, uint256 expected);
    error RoundNotOpen(uint256 round);
    error BaseModelMismatch(uint256 round, bytes32 expected, bytes32 given);
    error AlreadySubmitted(uint256 round, address client);
    error MalformedPacking(uint256 length, uint256 unit);
    error OutcomesMismatch(uint256 round, uint256 recorded, uint256 given);
    error ZeroSamples(uint256 round, address client);
    error NotCommitteeMember(uint256 round, address member);
    error AlreadyVoted(uint256 round, address member);
    error BadVoteSignature(uint256 round, address member);
    error VotesClosed(uint256 round);
    error NotAccepted(uint256 round, uint256 index);

    /// @notice Emitted once, at deployment.
    event LedgerCreated(bytes32 indexed configHash, bytes32 initialModelHash, address aggregator);
    /// @notice A client key was admitted to the federation.
    event ClientRegistered(address indexed client);
    /// @notice A round was opened on top of `baseModelHash`; `selected` packs 20-byte addresses.
    event RoundOpened(uint256 indexed round, bytes32 baseModelHash, bytes selected);
    /// @notice Signed commitments were posted; they take indices firstIndex.. in the round.
    event CommitmentsPosted(uint256 indexed round, uint256 firstIndex, bytes packed);
    /// @notice A client recorded its own commitment at `index` in the round.
    event CommitmentSubmitted(
        uint256 indexed round,
        uint256 index,
        address indexed client,
        bytes32 updateHash,
        uint64 numSamples
    );
    /// @notice A detector or committee flagged a client this round.
    event ClientFlagged(uint256 indexed round, address indexed client, int256 reputation);
    /// @notice The round's result: the new global model and one outcome byte per commitment
    /// (0 = used, in this order, by the aggregation rule; otherwise a rejection reason code).
    event RoundFinalized(uint256 indexed round, bytes32 globalModelHash, bytes outcomes);
    /// @notice The round's validation committee was drawn; `members` packs 20-byte addresses.
    event CommitteeSelected(uint256 indexed round, bytes members);
    /// @notice A committee member's signed vote: accept[i] is 1 when it accepts commitment i.
    event VoteRecorded(uint256 indexed round, address indexed member, bytes accept);

    /// @param configHash_ SHA-256 of the run's resolved configuration file.
    /// @param initialModelHash SHA-256 of the initial global-model blob.
    /// @param aggregator Account allowed to open and finalize rounds.
    constructor(
        bytes32 configHash_,
        bytes32 initialModelHash,
        address aggregator
    ) EIP712("FedLedger", "1") {
        _configHash = configHash_;
        _currentModelHash = initialModelHash;
        _grantRole(DEFAULT_ADMIN_ROLE, msg.sender);
        _grantRole(AGGREGATOR_ROLE, aggregator);
        emit LedgerCreated(configHash_, initialModelHash, aggregator);
    }

    /// @notice Admit client keys to the federation.
    /// @param clients Client addresses; each may be registered once.
    function registerClients(address[] calldata clients) external onlyRole(DEFAULT_ADMIN_ROLE) {
        for (uint256 i = 0; i < clients.length; ++i) {
            address c = clients[i];
            if (_registered[c]) revert AlreadyRegistered(c);
            _registered[c] = true;
            emit ClientRegistered(c);
        }
        _numClients += clients.length;
    }

    /// @notice Open round `round` (rounds are consecutive from 0) for the selected clients.
    /// @param round The round number; must be the next one.
    /// @param baseModelHash Hash of the global model the clients train from; must be the current one.
    /// @param selected The selected clients' addresses, packed 20 bytes each.
    function openRound(
        uint256 round,
        bytes32 baseModelHash,
        bytes calldata selected
    ) external onlyRole(AGGREGATOR_ROLE) {
        if (round != _nextRound) revert RoundOutOfOrder(round, _nextRound);
        if (baseModelHash != _currentModelHash)
            revert BaseModelMismatch(round, _currentModelHash, baseModelHash);
        if (selected.length % 20 != 0) revert MalformedPacking(selected.length, 20);
        Round storage r = _rounds[round];
        r.open = true;
        r.numSelected = uint32(selected.length / 20);
        r.baseModelHash = baseModelHash;
        r.selectedDigest = keccak256(selected);
        _nextRound = round + 1;
        emit RoundOpened(round, baseModelHash, selected);
    }

    /// @notice Post a batch of client-signed commitments for an open round.
    /// @param round The open round.
    /// @param packed PACKED_COMMITMENT_SIZE bytes per commitment.
    function postCommitments(
        uint256 round,
        bytes calldata packed
    ) external onlyRole(AGGREGATOR_ROLE) {
        Round storage r = _rounds[round];
        if (!r.open) revert RoundNotOpen(round);
        if (r.numVotes > 0) revert VotesClosed(round);
        if (packed.length % PACKED_COMMITMENT_SIZE != 0)
            revert MalformedPacking(packed.length, PACKED_COMMITMENT_SIZE);
        uint256 first = r.numCommitments;
        r.numCommitments += uint32(packed.length / PACKED_COMMITMENT_SIZE);
        r.commitmentsDigest = keccak256(abi.encodePacked(r.commitmentsDigest, keccak256(packed)));
        emit CommitmentsPosted(round, first, packed);
    }

    /// @notice A registered client records its own commitment (e.g. when the aggregator left it out).
    /// @param round The open round.
    /// @param updateHash SHA-256 of the client's update blob.
    /// @param numSamples Number of local training samples.
    function submitCommitment(uint256 round, bytes32 updateHash, uint64 numSamples) external {
        Round storage r = _rounds[round];
        if (!r.open) revert RoundNotOpen(round);
        if (r.numVotes > 0) revert VotesClosed(round);
        if (!_registered[msg.sender]) revert NotRegistered(msg.sender);
        if (_submittedDirectly[round][msg.sender]) revert AlreadySubmitted(round, msg.sender);
        if (numSamples == 0) revert ZeroSamples(round, msg.sender);
        _submittedDirectly[round][msg.sender] = true;
        uint256 index = r.numCommitments;
        r.numCommitments += 1;
        r.commitmentsDigest = keccak256(
            abi.encodePacked(r.commitmentsDigest, msg.sender, updateHash, numSamples)
        );
        emit CommitmentSubmitted(round, index, msg.sender, updateHash, numSamples);
    }

    /// @notice Close a round with its result: one outcome byte per recorded commitment.
    /// @param round The open round.
    /// @param globalModelHash SHA-256 of the new global-model blob.
    /// @param outcomes outcomes[i] is 0 when commitment i entered the aggregation rule, else a
    /// rejection reason code.
    /// @param flagged Clients that the rule, a detector or a committee excluded or down-weighted.
    function finalizeRound(
        uint256 round,
        bytes32 globalModelHash,
        bytes calldata outcomes,
        address[] calldata flagged
    ) external onlyRole(AGGREGATOR_ROLE) {
        Round storage r = _rounds[round];
        if (!r.open) revert RoundNotOpen(round);
        if (outcomes.length != r.numCommitments)
            revert OutcomesMismatch(round, r.numCommitments, outcomes.length);
        if (r.committeeSize > 0) _checkAccepted(round, r, outcomes);
        for (uint256 i = 0; i < flagged.length; ++i) {
            address c = flagged[i];
            if (!_registered[c]) revert NotRegistered(c);
            int256 rep = --_reputation[c];
            emit ClientFlagged(round, c, rep);
        }
        r.open = false;
        r.finalized = true;
        r.globalModelHash = globalModelHash;
        _currentModelHash = globalModelHash;
        emit RoundFinalized(round, globalModelHash, outcomes);
    }

    /// @notice Name the validation committee of an open round (before any vote).
    /// @param round The open round.
    /// @param members Registered clients, packed 20 bytes each.
    function selectCommittee(
        uint256 round,
        bytes calldata members
    ) external onlyRole(AGGREGATOR_ROLE) {
        Round storage r = _rounds[round];
        if (!r.open) revert RoundNotOpen(round);
        if (r.numVotes > 0) revert VotesClosed(round);
        if (members.length % 20 != 0) revert MalformedPacking(members.length, 20);
        for (uint256 off = 0; off < members.length; off += 20) {
            address m = address(bytes20(members[off:off + 20]));
            if (!_registered[m]) revert NotRegistered(m);
            _member[round][m] = 1;
        }
        r.committeeSize = uint32(members.length / 20);
        emit CommitteeSelected(round, members);
    }

    /// @notice Record committee members' signed votes on the round's commitments and tally them.
    /// @dev Each vote is member(20) | r(32) | vs(32) | accept (one byte per commitment, 0 or 1),
    /// signed as EIP-712 `Vote(uint256 round,bytes accept)`. Commitments cannot be added after
    /// the first vote.
    /// @param round The open round.
    /// @param votes Packed votes, back to back.
    function postVotes(uint256 round, bytes calldata votes) external onlyRole(AGGREGATOR_ROLE) {
        Round storage r = _rounds[round];
        if (!r.open) revert RoundNotOpen(round);
        uint256 n = r.numCommitments;
        uint256 unit = 84 + n;
        if (votes.length % unit != 0) revert MalformedPacking(votes.length, unit);
        bytes memory tally = _acceptVotes[round];
        if (tally.length == 0) tally = new bytes(n);
        for (uint256 off = 0; off < votes.length; off += unit) {
            address m = address(bytes20(votes[off:off + 20]));
            bytes calldata accept = votes[off + 84:off + unit];
            _checkVote(round, m, bytes32(votes[off + 20:off + 52]), bytes32(votes[off + 52:off + 84]), accept);
            for (uint256 i = 0; i < n; ++i) {
                if (accept[i] != 0) tally[i] = bytes1(uint8(tally[i]) + 1);
            }
            emit VoteRecorded(round, m, accept);
        }
        _acceptVotes[round] = tally;
        r.numVotes += uint32(votes.length / unit);
    }

    /// @notice How many committee members accepted each commitment of a round.
    function acceptVotes(uint256 round) external view returns (bytes memory) {
        return _acceptVotes[round];
    }

    /// @notice The EIP-712 digest a committee member signs for its vote.
    function voteDigest(uint256 round, bytes calldata accept) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(VOTE_TYPEHASH, round, keccak256(accept))));
    }

    /// @notice The EIP-712 digest a client signs for its commitment.
    function commitmentDigest(
        uint256 round,
        bytes32 updateHash,
        uint64 numSamples
    ) public view returns (bytes32) {
        return
            _hashTypedDataV4(keccak256(abi.encode(COMMITMENT_TYPEHASH, round, updateHash, numSamples)));
    }

    /// @notice Whether (r, vs) is `client`'s signature of the commitment: an on-chain check anyone
    /// can run (as a call) on a posted commitment.
    function verifyCommitment(
        uint256 round,
        address client,
        bytes32 updateHash,
        uint64 numSamples,
        bytes32 r,
        bytes32 vs
    ) external view returns (bool) {
        (address signer, ECDSA.RecoverError err, ) = ECDSA.tryRecover(
            commitmentDigest(round, updateHash, numSamples),
            r,
            vs
        );
        return err == ECDSA.RecoverError.NoError && signer == client;
    }

    /// @notice Summary of a round.
    function roundInfo(uint256 round) external view returns (Round memory) {
        return _rounds[round];
    }

    /// @notice Hash of the newest global model (the initial one before round 0 is finalized).
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

    /// @notice Whether `client` is a registered client.
    function isClient(address client) external view returns (bool) {
        return _registered[client];
    }

    /// @notice Number of registered clients.
    function clientCount() external view returns (uint256) {
        return _numClients;
    }

    /// @notice Reputation of a client: minus the number of rounds it was flagged in.
    function reputationOf(address client) external view returns (int256) {
        return _reputation[client];
    }

    function _checkVote(
        uint256 round,
        address m,
        bytes32 r_,
        bytes32 vs,
        bytes calldata accept
    ) private {
        uint8 state = _member[round][m];
        if (state == 0) revert NotCommitteeMember(round, m);
        if (state == 2) revert AlreadyVoted(round, m);
        (address signer, ECDSA.RecoverError err, ) = ECDSA.tryRecover(voteDigest(round, accept), r_, vs);
        if (err != ECDSA.RecoverError.NoError || signer != m) revert BadVoteSignature(round, m);
        _member[round][m] = 2;
    }

    /// A used commitment (outcome 0) needs the votes of more than half of the committee.
    function _checkAccepted(uint256 round, Round storage r, bytes calldata outcomes) private view {
        bytes memory tally = _acceptVotes[round];
        for (uint256 i = 0; i < outcomes.length; ++i) {
            if (outcomes[i] == 0) {
                uint256 yes = tally.length > i ? uint8(tally[i]) : 0;
                if (2 * yes <= r.committeeSize) revert NotAccepted(round, i);
            }
        }
    }
}
