// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IFedLedger: the events, errors and types of a federated-learning run's ledger
/// @notice One contract per run. Clients are registered by the admin (the requester) and
/// referred to by their registration index (errors and events name clients by it, except where
/// a client acts itself); ClientRegistered events map indices to addresses. A round goes through these phases, strictly in
/// order and one round at a time:
///  1. `openRound`: the aggregator names the selected clients (a bitmap of indices) on top of the
///     current global model; the round's selection seed is derived from that model's hash.
///  2. commitments: the aggregator posts the clients' EIP-712-signed commitments
///     (`postCommitments`; membership, uniqueness and sample counts are checked on-chain, the
///     signatures optimistically: anyone can prove a bad one with `proveBadSignature`, which
///     halts the ledger) and a selected client that was left out records its own
///     (`submitCommitment`), until the submission window closes `submissionWindow` blocks after
///     the last post.
///  3. committee (optional): after the window, the committee is named and its members' signed
///     votes, which bind the round's final commitments digest, are tallied.
///  4. `finalizeRound`: the new global model and one outcome per commitment (or
///     `finalizeAndOpen`, which also opens the next round on that model, in one transaction).
///     A round not finalized `roundTimeout` blocks after it opened can be aborted by anyone.
interface IFedLedger {
    /// @notice Parameters fixed at deployment.
    struct Params {
        bytes32 configHash; // SHA-256 of the run's resolved configuration file
        bytes32 initialModelHash; // SHA-256 of the initial global-model blob
        bytes32 selectionSalt; // mixed into every round's selection seed
        address aggregator; // the account that runs rounds
        uint32 clientsPerRound; // upper bound on a round's selection
        uint32 committeeSize; // 0: no committee
        uint32 maxFlags; // a client flagged this many times is excluded; 0: never
        uint64 submissionWindow; // blocks after the last post during which commitments may be recorded
        uint64 roundTimeout; // blocks after opening after which anyone may abort the round
    }

    /// @notice Phase of a round.
    enum Status {
        None,
        Open,
        Finalized,
        Aborted
    }

    /// @notice Summary of a round.
    struct RoundInfo {
        Status status;
        uint32 numSelected;
        uint32 numCommitments;
        uint32 committeeSize;
        uint32 numVotes;
        uint32 numBatches; // postCommitments calls; each batch's keccak256 is kept for fraud proofs
        bool fraudulent; // a fraud proof showed a posted commitment with an invalid signature
        uint64 openedAt; // block of openRound
        uint64 windowEnd; // last block in which a commitment may be recorded
        bytes32 baseModelHash;
        bytes32 selectionSeed;
        bytes32 commitmentsDigest;
        bytes32 globalModelHash;
    }

    // ------------------------------------------------------------------ errors
    error FedLedgerZeroAddress();
    error FedLedgerAlreadyRegistered(address client);
    error FedLedgerNotRegistered(address client);
    error FedLedgerUnknownClient(uint256 index);
    error FedLedgerBadParameters(string what);
    error FedLedgerRoundOutOfOrder(uint256 round, uint256 expected);
    error FedLedgerPreviousRoundOpen(uint256 round);
    error FedLedgerRoundNotOpen(uint256 round);
    error FedLedgerBaseModelMismatch(uint256 round, bytes32 expected, bytes32 given);
    error FedLedgerMalformedPacking(uint256 length, uint256 unit);
    error FedLedgerTooManySelected(uint256 round, uint256 limit, uint256 given);
    error FedLedgerNotAscending(uint256 round, uint256 position);
    error FedLedgerClientExcluded(uint256 round, uint256 client);
    error FedLedgerNotSelected(uint256 round, uint256 client);
    error FedLedgerDuplicateCommitment(uint256 round, uint256 client);
    error FedLedgerZeroSamples(uint256 round, uint256 client);
    error FedLedgerBadSignature(uint256 round, address client);
    error FedLedgerWindowClosed(uint256 round, uint256 windowEnd);
    error FedLedgerWindowOpen(uint256 round, uint256 windowEnd);
    error FedLedgerNoCommitteeConfigured();
    error FedLedgerCommitteeAlreadySelected(uint256 round);
    error FedLedgerCommitteeNotSelected(uint256 round);
    error FedLedgerCommitteeSize(uint256 round, uint256 expected, uint256 given);
    error FedLedgerNotCommitteeMember(uint256 round, address member);
    error FedLedgerAlreadyVoted(uint256 round, address member);
    error FedLedgerBadVoteSignature(uint256 round, address member);
    error FedLedgerMalformedVote(uint256 round, address member);
    error FedLedgerOutcomesMismatch(uint256 round, uint256 recorded, uint256 given);
    error FedLedgerUnknownOutcome(uint256 round, uint256 index, uint8 code);
    error FedLedgerNotAccepted(uint256 round, uint256 index);
    error FedLedgerFlagNotCommitted(uint256 round, uint256 client);
    error FedLedgerDeadlineNotReached(uint256 round, uint256 deadline);
    error FedLedgerHalted(uint256 fraudulentRound);
    error FedLedgerUnknownBatch(uint256 round, uint256 batch);
    error FedLedgerBadPosition(uint256 round, uint256 position);
    error FedLedgerSignatureValid(uint256 round, uint256 client);
    error FedLedgerWrongClient(uint256 index, address client);
    error FedLedgerRolesFixed();

    // ------------------------------------------------------------------ events
    /// @notice Emitted once, at deployment.
    event LedgerCreated(bytes32 indexed configHash, bytes32 initialModelHash, Params params);
    /// @notice A client key was admitted to the federation with registration index `index`.
    event ClientRegistered(address indexed client, uint256 index);
    /// @notice Round `round` opened on `baseModelHash`; `selected` is a bitmap of client indices.
    event RoundOpened(uint256 indexed round, bytes32 baseModelHash, bytes32 selectionSeed, bytes selected);
    /// @notice The aggregator posted signed commitments; they take indices firstIndex.. in the round.
    event CommitmentsPosted(uint256 indexed round, uint256 firstIndex, bytes packed, uint256 windowEnd);
    /// @notice A selected client recorded its own commitment at `index` in the round.
    event CommitmentSubmitted(
        uint256 indexed round,
        uint256 index,
        address indexed client,
        bytes32 updateHash,
        uint64 numSamples
    );
    /// @notice The round's committee was named; `members` is a bitmap of client indices.
    event CommitteeSelected(uint256 indexed round, bytes members);
    /// @notice A committee member's signed vote: accept[i] is 1 when it accepts commitment i;
    /// (r, vs) is its EIP-2098 signature of Vote(round, commitmentsDigest, accept).
    event VoteRecorded(uint256 indexed round, address indexed member, bytes accept, bytes32 r, bytes32 vs);
    /// @notice A detector, a check or the committee flagged client `client` (registration index).
    event ClientFlagged(uint256 indexed round, uint256 indexed client, uint256 flags);
    /// @notice A client reached the maximum number of flags and can no longer be selected.
    event ClientExcluded(uint256 indexed round, uint256 indexed client);
    /// @notice The round's result: the new global model and one outcome byte per commitment
    /// (0 = entered the aggregation rule, in this order; otherwise a rejection reason code).
    event RoundFinalized(uint256 indexed round, bytes32 globalModelHash, bytes outcomes);
    /// @notice A stalled round was aborted after its deadline; the global model is unchanged.
    event RoundAborted(uint256 indexed round, address by);
    /// @notice Someone proved that the aggregator posted a commitment whose signature is not the
    /// client's: the round is marked fraudulent and the ledger accepts no further round.
    event FraudProven(uint256 indexed round, uint256 batch, uint256 position, uint256 client, address prover);
}
