// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {IFedLedger} from "./IFedLedger.sol";

/// @notice The FedLedger views a task market reads (FedLedger.sol implements them).
interface IFedLedgerViews {
    function params() external view returns (IFedLedger.Params memory);
    function configHash() external view returns (bytes32);
    function clientCount() external view returns (uint256);
    function indexOf(address client) external view returns (bool registered, uint256 index);
    function hasCommitted(uint256 round, address client) external view returns (bool);
    function flagsOf(address client) external view returns (uint256);
    function roundInfo(uint256 round) external view returns (IFedLedger.RoundInfo memory);
    function batchHash(uint256 round, uint256 batch) external view returns (bytes32);
    function roundCount() external view returns (uint256);
}

/// @title TaskMarket: a crowdsourcing market for federated-learning tasks run on a FedLedger
/// @notice A requester posts a task and escrows its reward budget and its supply-cost budget in
/// the same transaction; workers join by staking before a deadline and declare their cost per
/// unit of work; the aggregator posts a bond. The requester then binds the FedLedger run whose
/// registered clients are exactly the joined workers, in join order, under the task's config
/// hash. After each round is final on that ledger, the aggregator posts every worker's score,
/// work, bonus flag and validator flag as packed calldata (so the data is on-chain); the contract refuses a
/// positive entry for a worker without a commitment in that round, keeps the entries' Merkle
/// root and totals, and the round becomes payable after a challenge window in which anyone can
/// prove from the ledger's batches that an entry claims more work than its commitment's
/// samples x epochs; a proven fraud voids the round, ends the task and gives the aggregator's bond to the
/// prover. Payouts per round: the round's reward pool split in proportion to score, its bonus
/// pool split equally among the flagged-for-bonus (highest-voted) workers, its validation pool
/// split equally among the validator-flagged ones (committee members whose vote agreed with the
/// round's outcome; the audit recomputes both flags from the ledger), and each worker's
/// declared rate x recorded work (scaled down pro rata once the cost budget runs out). At the
/// end, the stake of every worker the ledger flagged is slashed and shared equally by the
/// unflagged workers (the requester gets it when none is unflagged). Pull payments only: every
/// amount is credited, then `withdraw`n; nothing is ever credited beyond what the task took in.
/// Stalls: an unbound task is cancellable after its bind period (everyone gets their deposits
/// back); a round not posted in its period lets anyone stall the task (workers keep what final
/// rounds earned and get their stake back, the requester the unspent budget and the bond).
contract TaskMarket is ReentrancyGuard {
    using SafeERC20 for IERC20;

    uint256 public constant BPS = 10_000;
    /// @notice One packed entry per worker, in join order: score(8) | work(8) | flags(1), where
    /// flags bit 0 is the bonus and bit 1 the validation reward (a committee member whose vote
    /// agreed with the round's outcome); no other bit may be set.
    uint256 public constant ENTRY_SIZE = 17;

    struct Terms {
        IERC20 token;
        address aggregator;
        bytes32 specHash; // the config hash the bound FedLedger run must record
        uint128 budget; // score shares and bonuses, over all rounds
        uint128 costBudget; // supply-cost reimbursements, over all rounds
        uint96 stake; // per worker
        uint96 aggregatorBond;
        uint96 costRateCap; // the most a worker may declare per unit of work
        uint64 maxWorkPerRound; // the most work units one worker may be paid for per round
        uint32 maxWorkers;
        uint32 rounds;
        uint32 epochs; // a commitment's work = its sample count x epochs
        uint16 bonusBps; // part of the budget that goes to bonuses
        uint16 validatorBps; // part of the budget that goes to validation rewards
        uint8 scoring; // scoring method (fedledger.incentives registry id), recorded
        uint64 joinDeadline; // last block to join
        uint64 bindPeriod; // blocks after joinDeadline to bind the run
        uint64 roundPeriod; // blocks per round, from binding, to post its scores
        uint64 challengeWindow; // blocks during which a posted round can be challenged
    }

    enum Phase {
        None,
        Joining,
        Running,
        Closed,
        Stalled,
        Faulted,
        Cancelled
    }

    struct Task {
        Terms terms;
        address requester;
        address ledger;
        address prover; // who proved a fraud (gets the bond)
        Phase phase;
        uint64 boundAt;
        uint32 numWorkers;
        uint32 nextRound;
        uint32 honest; // unflagged workers at close
        bool bondPosted;
        bool bondSettled;
        bool reclaimed;
        uint128 deposited; // escrow + stakes + bond taken in
        uint128 credited; // everything credited to anyone so far (never above deposited)
        uint128 granted; // what final-or-pending rounds grant (pools with takers + costs)
        uint128 costGranted; // reimbursements granted so far (never above costBudget)
        uint128 slashedTotal;
    }

    /// @notice A worker's entry of a round, as posted.
    struct Entry {
        uint64 score;
        uint64 work;
        bool bonus;
        bool validator;
    }

    /// @notice A fraud proof against a posted entry's work: the entry and its Merkle proof, and
    /// the worker's commitment at `position` of batch `batch` the aggregator posted on the
    /// ledger in that round (the batch's bytes, which the ledger's batch hash binds).
    struct WorkChallenge {
        uint256 round;
        uint256 worker;
        Entry entry;
        bytes32[] proof;
        uint256 batch;
        uint256 position;
        bytes packedBatch;
    }

    struct Worker {
        address account;
        uint96 rate; // declared cost per unit of work
    }

    struct ScoredRound {
        bytes32 root; // Merkle root of the round's entries (see entryHash)
        uint64 totalScore;
        uint32 bonusCount;
        uint32 validatorCount;
        uint64 postedAt;
        bool voided;
        uint128 cost; // sum of rate x work over the round's entries
        uint128 costPaid; // the part of cost the budget covers
    }

    uint256 public taskCount;
    mapping(uint256 task => Task) private _tasks;
    mapping(uint256 task => Worker[]) private _workers;
    mapping(uint256 task => mapping(address => uint256)) private _slot; // worker index + 1
    mapping(uint256 task => mapping(uint256 round => ScoredRound)) private _rounds;
    mapping(uint256 task => mapping(uint256 worker => mapping(uint256 word => uint256))) private _claimed;
    mapping(uint256 task => mapping(uint256 word => uint256)) private _slashed;
    mapping(uint256 task => mapping(uint256 word => uint256)) private _stakeDone;
    mapping(uint256 task => mapping(address => uint256)) private _owed;

    error MarketBadTerms(string what);
    error MarketUnknownTask(uint256 task);
    error MarketWrongPhase(uint256 task, Phase phase);
    error MarketNotRequester(uint256 task, address caller);
    error MarketNotAggregator(uint256 task, address caller);
    error MarketJoinClosed(uint256 task, uint256 deadline);
    error MarketFull(uint256 task, uint256 maxWorkers);
    error MarketAlreadyJoined(uint256 task, address worker);
    error MarketNotWorker(uint256 task, address caller);
    error MarketRateTooHigh(uint256 task, uint256 rate, uint256 cap);
    error MarketPartyCannotJoin(uint256 task, address party);
    error MarketBondMissing(uint256 task);
    error MarketBondPosted(uint256 task);
    error MarketTooEarly(uint256 task, uint256 untilBlock);
    error MarketTooLate(uint256 task, uint256 deadline);
    error MarketNoWorkers(uint256 task);
    error MarketLedgerMismatch(uint256 task, string what);
    error MarketRoundOutOfOrder(uint256 task, uint256 round, uint256 expected);
    error MarketRoundNotFinalOnLedger(uint256 task, uint256 round);
    error MarketMalformedEntries(uint256 task, uint256 length, uint256 expected);
    error MarketNoCommitment(uint256 task, uint256 round, uint256 worker);
    error MarketWorkTooLarge(uint256 task, uint256 round, uint256 worker, uint256 work);
    error MarketBadFlags(uint256 task, uint256 round, uint256 worker, uint256 flags);
    error MarketRoundNotPayable(uint256 task, uint256 round);
    error MarketAlreadyClaimed(uint256 task, uint256 round, uint256 worker);
    error MarketBadProof(uint256 task, uint256 round, uint256 worker);
    error MarketNotFraud(uint256 task, uint256 round, uint256 worker);
    error MarketBadBatch(uint256 task, uint256 round, uint256 batch);
    error MarketWrongEntry(uint256 task, uint256 round, uint256 position);
    error MarketChallengeClosed(uint256 task, uint256 round);
    error MarketDone(uint256 task, address who);
    error MarketOverdrawn(uint256 task); // would credit more than the task took in
    error MarketNothingOwed(uint256 task, address who);
    error MarketAllRoundsPosted(uint256 task); // nothing to stall: close it

    event TaskCreated(uint256 indexed task, address indexed requester, Terms terms);
    event WorkerJoined(uint256 indexed task, address indexed worker, uint256 index, uint256 rate);
    event BondPosted(uint256 indexed task, address indexed aggregator, uint256 amount);
    event TaskBound(uint256 indexed task, address indexed ledger);
    event RoundScored(
        uint256 indexed task,
        uint256 indexed round,
        bytes32 root,
        uint256 totalScore,
        uint256 bonusCount,
        uint256 validatorCount,
        uint256 cost,
        uint256 costPaid,
        bytes entries
    );
    event FraudProven(uint256 indexed task, uint256 indexed round, uint256 worker, address prover);
    event TaskEnded(uint256 indexed task, Phase phase, uint256 slashedTotal, uint256 honest);
    event Slashed(uint256 indexed task, uint256 indexed worker, uint256 amount);
    event Credited(uint256 indexed task, address indexed account, uint256 amount, bytes32 why);
    event Withdrawn(uint256 indexed task, address indexed account, uint256 amount);

    // ============================================================ requester and joining
    /// @notice Post a task and escrow `budget + costBudget` of `terms.token` (approved before).
    function createTask(Terms calldata terms) external nonReentrant returns (uint256 id) {
        id = _create(terms);
    }

    /// @notice createTask with an EIP-2612 permit for the escrow instead of an approval. A
    /// permit someone else already used (front-running) is ignored if the allowance is there.
    function createTaskWithPermit(
        Terms calldata terms,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external nonReentrant returns (uint256 id) {
        uint256 amount = uint256(terms.budget) + terms.costBudget;
        try IERC20Permit(address(terms.token)).permit(msg.sender, address(this), amount, deadline, v, r, s) {} catch {}
        id = _create(terms);
    }

    function _create(Terms calldata terms) internal returns (uint256 id) {
        _checkTerms(terms);
        id = taskCount++;
        Task storage t = _tasks[id];
        t.terms = terms;
        t.requester = msg.sender;
        t.phase = Phase.Joining;
        uint256 amount = uint256(terms.budget) + terms.costBudget;
        t.deposited = uint128(amount);
        emit TaskCreated(id, msg.sender, terms);
        _pull(terms.token, msg.sender, amount);
    }

    function _checkTerms(Terms calldata terms) internal view {
        if (address(terms.token) == address(0)) revert MarketBadTerms("token is the zero address");
        if (terms.aggregator == address(0)) revert MarketBadTerms("aggregator is the zero address");
        if (terms.aggregator == msg.sender) revert MarketBadTerms("aggregator is the requester");
        if (terms.budget == 0) revert MarketBadTerms("budget is 0");
        if (terms.stake == 0) revert MarketBadTerms("stake is 0");
        if (terms.maxWorkers == 0) revert MarketBadTerms("maxWorkers is 0");
        if (terms.rounds == 0) revert MarketBadTerms("rounds is 0");
        if (terms.epochs == 0) revert MarketBadTerms("epochs is 0");
        if (uint256(terms.bonusBps) + terms.validatorBps > BPS)
            revert MarketBadTerms("bonusBps + validatorBps exceeds 10000");
        if (terms.joinDeadline <= block.number) revert MarketBadTerms("joinDeadline has passed");
        if (terms.bindPeriod == 0 || terms.roundPeriod == 0 || terms.challengeWindow == 0)
            revert MarketBadTerms("a period is 0");
        if (terms.costBudget > 0 && (terms.costRateCap == 0 || terms.maxWorkPerRound == 0))
            revert MarketBadTerms("a cost budget needs costRateCap and maxWorkPerRound");
        if (_pool(terms.budget, _rewardBps(terms.bonusBps, terms.validatorBps), terms.rounds) == 0 && _rewardBps(terms.bonusBps, terms.validatorBps) > 0)
            revert MarketBadTerms("budget too small: a round's reward pool would be 0");
    }

    /// @notice Join a task: stake `terms.stake` (approved before) and declare a cost per unit
    /// of work, at most `terms.costRateCap`.
    function join(uint256 id, uint96 rate) external nonReentrant {
        Task storage t = _task(id);
        _phase(id, t, Phase.Joining);
        Terms storage terms = t.terms;
        if (block.number > terms.joinDeadline) revert MarketJoinClosed(id, terms.joinDeadline);
        if (t.numWorkers >= terms.maxWorkers) revert MarketFull(id, terms.maxWorkers);
        if (_slot[id][msg.sender] != 0) revert MarketAlreadyJoined(id, msg.sender);
        if (msg.sender == t.requester || msg.sender == terms.aggregator)
            revert MarketPartyCannotJoin(id, msg.sender);
        if (rate > terms.costRateCap) revert MarketRateTooHigh(id, rate, terms.costRateCap);
        _workers[id].push(Worker({account: msg.sender, rate: rate}));
        uint256 index = t.numWorkers++;
        _slot[id][msg.sender] = index + 1;
        t.deposited += terms.stake;
        emit WorkerJoined(id, msg.sender, index, rate);
        _pull(terms.token, msg.sender, terms.stake);
    }

    /// @notice The aggregator's bond (approved before), before the run is bound.
    function postBond(uint256 id) external nonReentrant {
        Task storage t = _task(id);
        _phase(id, t, Phase.Joining);
        if (msg.sender != t.terms.aggregator) revert MarketNotAggregator(id, msg.sender);
        if (t.bondPosted) revert MarketBondPosted(id);
        t.bondPosted = true;
        t.deposited += t.terms.aggregatorBond;
        emit BondPosted(id, msg.sender, t.terms.aggregatorBond);
        _pull(t.terms.token, msg.sender, t.terms.aggregatorBond);
    }

    /// @notice Bind the task to its FedLedger run, after the join deadline and within the bind
    /// period: the run's clients must be the joined workers in join order, its aggregator the
    /// task's, its config hash the task's, and it must not have started.
    function bind(uint256 id, address ledger) external {
        Task storage t = _task(id);
        _phase(id, t, Phase.Joining);
        Terms storage terms = t.terms;
        if (msg.sender != t.requester) revert MarketNotRequester(id, msg.sender);
        if (block.number <= terms.joinDeadline) revert MarketTooEarly(id, terms.joinDeadline + 1);
        uint256 bindBy = uint256(terms.joinDeadline) + terms.bindPeriod;
        if (block.number > bindBy) revert MarketTooLate(id, bindBy);
        if (!t.bondPosted) revert MarketBondMissing(id);
        uint256 n = t.numWorkers;
        if (n == 0) revert MarketNoWorkers(id);
        IFedLedgerViews l = IFedLedgerViews(ledger);
        if (l.configHash() != terms.specHash) revert MarketLedgerMismatch(id, "config hash");
        if (l.params().aggregator != terms.aggregator) revert MarketLedgerMismatch(id, "aggregator");
        if (l.clientCount() != n) revert MarketLedgerMismatch(id, "client count");
        if (l.roundInfo(0).status != IFedLedger.Status.None) revert MarketLedgerMismatch(id, "run started");
        Worker[] storage ws = _workers[id];
        for (uint256 i = 0; i < n; ++i) {
            (bool registered, uint256 index) = l.indexOf(ws[i].account);
            if (!registered || index != i) revert MarketLedgerMismatch(id, "client order");
        }
        t.ledger = ledger;
        t.boundAt = uint64(block.number);
        t.phase = Phase.Running;
        emit TaskBound(id, ledger);
    }

    /// @notice End a task that was not bound in time: every deposit goes back.
    function cancel(uint256 id) external {
        Task storage t = _task(id);
        _phase(id, t, Phase.Joining);
        uint256 bindBy = uint256(t.terms.joinDeadline) + t.terms.bindPeriod;
        if (block.number <= bindBy) revert MarketTooEarly(id, bindBy + 1);
        _end(id, t, Phase.Cancelled);
    }

    // ============================================================ rounds
    /// @notice Post round `round`'s entries, one per worker in join order: score(8) | work(8) |
    /// flags(1) (see ENTRY_SIZE). Requirements: the caller is the aggregator; rounds in order and within their
    /// period; the round is finalized on the bound ledger; a worker with a non-zero entry has
    /// a commitment in that round there; no work above `maxWorkPerRound`.
    function postRound(uint256 id, uint256 round, bytes calldata entries) external {
        Task storage t = _task(id);
        _phase(id, t, Phase.Running);
        if (msg.sender != t.terms.aggregator) revert MarketNotAggregator(id, msg.sender);
        if (round != t.nextRound || round >= t.terms.rounds)
            revert MarketRoundOutOfOrder(id, round, t.nextRound);
        uint256 due = _due(t, round);
        if (block.number > due) revert MarketTooLate(id, due);
        if (IFedLedgerViews(t.ledger).roundInfo(round).status != IFedLedger.Status.Finalized)
            revert MarketRoundNotFinalOnLedger(id, round);
        uint256 expected = uint256(t.numWorkers) * ENTRY_SIZE;
        if (entries.length != expected) revert MarketMalformedEntries(id, entries.length, expected);
        Totals memory sum = _scan(id, t, round, entries);
        _record(id, t, round, sum, entries);
    }

    struct Totals {
        bytes32 root;
        uint256 score;
        uint256 bonusCount;
        uint256 validatorCount;
        uint256 cost;
    }

    /// The round's Merkle root and totals, checking every non-zero entry against the ledger.
    function _scan(uint256 id, Task storage t, uint256 round, bytes calldata entries)
        internal
        view
        returns (Totals memory sum)
    {
        uint256 n = t.numWorkers;
        bytes32[] memory nodes = new bytes32[](n);
        IFedLedgerViews l = IFedLedgerViews(t.ledger);
        Worker[] storage ws = _workers[id];
        for (uint256 i = 0; i < n; ++i) {
            (uint64 score, uint64 work, uint8 flags) = _entry(entries, i);
            if (flags > 3) revert MarketBadFlags(id, round, i, flags);
            if (score != 0 || work != 0 || flags != 0) {
                if (!l.hasCommitted(round, ws[i].account)) revert MarketNoCommitment(id, round, i);
                if (work > t.terms.maxWorkPerRound) revert MarketWorkTooLarge(id, round, i, work);
                sum.score += score;
                if (flags & 1 != 0) ++sum.bonusCount;
                if (flags & 2 != 0) ++sum.validatorCount;
                sum.cost += uint256(ws[i].rate) * work;
            }
            nodes[i] = entryHash(id, round, i, score, work, flags & 1 != 0, flags & 2 != 0);
        }
        if (sum.score > type(uint64).max) revert MarketBadTerms("round score total exceeds uint64");
        sum.root = _root(nodes);
    }

    function _record(uint256 id, Task storage t, uint256 round, Totals memory sum, bytes calldata entries) internal {
        Terms storage terms = t.terms;
        uint256 costLeft = uint256(terms.costBudget) - t.costGranted;
        uint256 costPaid = sum.cost < costLeft ? sum.cost : costLeft;
        _rounds[id][round] = ScoredRound({
            root: sum.root,
            totalScore: uint64(sum.score),
            bonusCount: uint32(sum.bonusCount),
            validatorCount: uint32(sum.validatorCount),
            postedAt: uint64(block.number),
            voided: false,
            cost: uint128(sum.cost),
            costPaid: uint128(costPaid)
        });
        t.costGranted += uint128(costPaid);
        t.granted += uint128(_granted(terms, _rounds[id][round]));
        t.nextRound = uint32(round + 1);
        emit RoundScored(
            id, round, sum.root, sum.score, sum.bonusCount, sum.validatorCount, sum.cost, costPaid, entries
        );
    }

    /// @notice Prove that a posted entry claims more work than its commitment's sample count x
    /// epochs, from a batch the aggregator posted on the ledger (see WorkChallenge); less is
    /// the aggregator's choice (it reimburses only used updates), which the audit checks. Within the round's
    /// challenge window. Voids the round, ends the task as Faulted; the aggregator's bond goes
    /// to the prover.
    function challengeWork(uint256 id, WorkChallenge calldata c) external {
        Task storage t = _task(id);
        if (t.phase != Phase.Running && t.phase != Phase.Stalled) revert MarketWrongPhase(id, t.phase);
        ScoredRound storage s = _rounds[id][c.round];
        if (s.postedAt == 0 || s.voided) revert MarketRoundNotPayable(id, c.round);
        if (block.number > uint256(s.postedAt) + t.terms.challengeWindow) revert MarketChallengeClosed(id, c.round);
        if (!_verify(s.root, t.numWorkers, c.worker, _leaf(id, c.round, c.worker, c.entry), c.proof))
            revert MarketBadProof(id, c.round, c.worker);
        uint256 samples = _samplesIn(id, t, c.round, c.worker, c.batch, c.position, c.packedBatch);
        if (uint256(c.entry.work) <= samples * t.terms.epochs) revert MarketNotFraud(id, c.round, c.worker);
        s.voided = true;
        t.granted -= uint128(_granted(t.terms, s)); // nobody can claim it: back to the requester
        t.costGranted -= s.costPaid;
        t.prover = msg.sender;
        emit FraudProven(id, c.round, c.worker, msg.sender);
        _end(id, t, Phase.Faulted);
    }

    /// The sample count of `worker`'s commitment at `position` of a batch posted on the ledger.
    function _samplesIn(
        uint256 id,
        Task storage t,
        uint256 round,
        uint256 worker,
        uint256 batch,
        uint256 position,
        bytes calldata packedBatch
    ) internal view returns (uint256) {
        if (keccak256(packedBatch) != IFedLedgerViews(t.ledger).batchHash(round, batch))
            revert MarketBadBatch(id, round, batch);
        uint256 at = position * 108; // FedLedger.PACKED_COMMITMENT_SIZE
        if (at + 108 > packedBatch.length) revert MarketWrongEntry(id, round, position);
        if (uint32(bytes4(packedBatch[at:at + 4])) != worker) revert MarketWrongEntry(id, round, position);
        return uint64(bytes8(packedBatch[at + 36:at + 44]));
    }

    /// @notice End a task whose next round was not posted within its period.
    function stall(uint256 id) external {
        Task storage t = _task(id);
        _phase(id, t, Phase.Running);
        if (t.nextRound >= t.terms.rounds) revert MarketAllRoundsPosted(id);
        uint256 due = _due(t, t.nextRound);
        if (block.number <= due) revert MarketTooEarly(id, due + 1);
        _end(id, t, Phase.Stalled);
    }

    /// @notice Close a task whose every round is posted and past its challenge window: slash
    /// the stake of every worker the ledger flagged (none when the ledger may have finalized a
    /// round beyond the task's, whose flags the task cannot tell apart).
    function close(uint256 id) external {
        Task storage t = _task(id);
        _phase(id, t, Phase.Running);
        Terms storage terms = t.terms;
        if (t.nextRound < terms.rounds) revert MarketTooEarly(id, _due(t, t.nextRound));
        uint256 final_ = uint256(_rounds[id][terms.rounds - 1].postedAt) + terms.challengeWindow;
        if (block.number <= final_) revert MarketTooEarly(id, final_ + 1);
        IFedLedgerViews l = IFedLedgerViews(t.ledger);
        // flags come with finalizations: those of rounds past the task's cannot be told apart
        uint256 count = l.roundCount();
        bool attributable = count <= terms.rounds ||
            (count == uint256(terms.rounds) + 1 && l.roundInfo(terms.rounds).status != IFedLedger.Status.Finalized);
        uint256 n = t.numWorkers;
        uint256 slashedCount;
        if (attributable) {
            Worker[] storage ws = _workers[id];
            for (uint256 i = 0; i < n; ++i) {
                if (l.flagsOf(ws[i].account) > 0) {
                    _slashed[id][i >> 8] |= 1 << (i & 255);
                    ++slashedCount;
                    emit Slashed(id, i, terms.stake);
                }
            }
        }
        t.slashedTotal = uint128(slashedCount * terms.stake);
        t.honest = uint32(n - slashedCount);
        _end(id, t, Phase.Closed);
    }

    // ============================================================ payouts (pull)
    /// @notice Credit the caller's pay for payable rounds, each with its entry and proof.
    function claim(uint256 id, uint256[] calldata rounds, Entry[] calldata entries, bytes32[][] calldata proofs)
        external
    {
        Task storage t = _task(id);
        uint256 worker = _workerIndex(id, msg.sender);
        uint256 m = rounds.length;
        if (entries.length != m || proofs.length != m) revert MarketMalformedEntries(id, entries.length, m);
        uint256 total;
        for (uint256 k = 0; k < m; ++k) total += _claimOne(id, t, worker, rounds[k], entries[k], proofs[k]);
        _credit(id, t, msg.sender, total, "rounds");
    }

    function _claimOne(
        uint256 id,
        Task storage t,
        uint256 worker,
        uint256 round,
        Entry calldata e,
        bytes32[] calldata proof
    ) internal returns (uint256) {
        ScoredRound storage s = _payable(id, t, round);
        mapping(uint256 => uint256) storage claimed = _claimed[id][worker];
        uint256 bit = 1 << (round & 255);
        if (claimed[round >> 8] & bit != 0) revert MarketAlreadyClaimed(id, round, worker);
        if (!_verify(s.root, t.numWorkers, worker, _leaf(id, round, worker, e), proof))
            revert MarketBadProof(id, round, worker);
        claimed[round >> 8] |= bit;
        return _pay(t, s, _workers[id][worker].rate, e);
    }

    /// @notice Credit the caller's stake back once the task has ended (plus its share of the
    /// slashed stakes when the task closed), unless the ledger flagged it.
    function claimStake(uint256 id) external {
        Task storage t = _task(id);
        _ended(id, t);
        uint256 worker = _workerIndex(id, msg.sender);
        uint256 bit = 1 << (worker & 255);
        if (_stakeDone[id][worker >> 8] & bit != 0) revert MarketDone(id, msg.sender);
        _stakeDone[id][worker >> 8] |= bit;
        if (_slashed[id][worker >> 8] & bit != 0) return; // slashed: nothing back
        uint256 amount = t.terms.stake;
        if (t.phase == Phase.Closed && t.slashedTotal > 0) amount += t.slashedTotal / t.honest;
        _credit(id, t, msg.sender, amount, "stake");
    }

    /// @notice Credit the aggregator's bond to whom it belongs once the task has ended (and, if
    /// it stalled, the last challenge window has passed): the aggregator (closed or
    /// cancelled), the requester (stalled), the fraud's prover (faulted).
    function settleBond(uint256 id) external {
        Task storage t = _task(id);
        _ended(id, t);
        _challengesOver(id, t);
        if (t.bondSettled || !t.bondPosted) revert MarketDone(id, msg.sender);
        t.bondSettled = true;
        address to = t.terms.aggregator;
        if (t.phase == Phase.Stalled) to = t.requester;
        else if (t.phase == Phase.Faulted) to = t.prover;
        _credit(id, t, to, t.terms.aggregatorBond, "bond");
    }

    /// @notice Credit the requester what no round granted (a voided round grants nothing; and
    /// the slashed stakes when no worker was left unflagged), once the task has ended (and, if
    /// it stalled, the last challenge window has passed).
    function reclaim(uint256 id) external {
        Task storage t = _task(id);
        _ended(id, t);
        _challengesOver(id, t);
        if (msg.sender != t.requester) revert MarketNotRequester(id, msg.sender);
        if (t.reclaimed) revert MarketDone(id, msg.sender);
        t.reclaimed = true;
        uint256 amount = uint256(t.terms.budget) + t.terms.costBudget - t.granted;
        if (t.phase == Phase.Closed && t.honest == 0) amount += t.slashedTotal;
        _credit(id, t, msg.sender, amount, "unspent");
    }

    /// @notice Send the caller everything credited to it in task `id`.
    function withdraw(uint256 id) external nonReentrant {
        Task storage t = _task(id);
        uint256 amount = _owed[id][msg.sender];
        if (amount == 0) revert MarketNothingOwed(id, msg.sender);
        _owed[id][msg.sender] = 0;
        emit Withdrawn(id, msg.sender, amount);
        t.terms.token.safeTransfer(msg.sender, amount);
    }

    // ============================================================ views
    function termsOf(uint256 id) external view returns (Terms memory) {
        return _task(id).terms;
    }

    function taskInfo(uint256 id)
        external
        view
        returns (
            Phase phase,
            address requester,
            address ledger,
            uint256 numWorkers,
            uint256 nextRound,
            uint256 deposited,
            uint256 credited,
            uint256 granted,
            uint256 slashedTotal
        )
    {
        Task storage t = _task(id);
        return (t.phase, t.requester, t.ledger, t.numWorkers, t.nextRound, t.deposited, t.credited, t.granted, t.slashedTotal);
    }

    function workerAt(uint256 id, uint256 index) external view returns (address account, uint256 rate) {
        Worker storage w = _workers[id][index];
        return (w.account, w.rate);
    }

    function scoredRound(uint256 id, uint256 round) external view returns (ScoredRound memory) {
        return _rounds[id][round];
    }

    function owed(uint256 id, address account) external view returns (uint256) {
        return _owed[id][account];
    }

    function isSlashed(uint256 id, uint256 index) external view returns (bool) {
        return _slashed[id][index >> 8] & (1 << (index & 255)) != 0;
    }

    function hasClaimed(uint256 id, uint256 index, uint256 round) external view returns (bool) {
        return _claimed[id][index][round >> 8] & (1 << (round & 255)) != 0;
    }

    /// @notice What one entry pays: the score's share of the round's reward pool, an equal part
    /// of its bonus pool and of its validation pool, and rate x work scaled by the part of the
    /// round's cost the budget covers.
    function payFor(uint256 id, uint256 round, uint256 index, Entry calldata e) external view returns (uint256) {
        Task storage t = _task(id);
        return _pay(t, _rounds[id][round], _workers[id][index].rate, e);
    }

    /// @notice Leaf of the round's Merkle tree for worker `index` (the tree has one leaf per
    /// worker, in join order; a node is keccak256(left || right), an odd last node moves up).
    function entryHash(
        uint256 id,
        uint256 round,
        uint256 index,
        uint64 score,
        uint64 work,
        bool bonus,
        bool validator
    ) public view returns (bytes32) {
        return keccak256(abi.encode(address(this), id, round, index, score, work, bonus, validator));
    }

    // ============================================================ internals
    function _leaf(uint256 id, uint256 round, uint256 index, Entry calldata e) internal view returns (bytes32) {
        return entryHash(id, round, index, e.score, e.work, e.bonus, e.validator);
    }

    function _task(uint256 id) internal view returns (Task storage t) {
        t = _tasks[id];
        if (t.phase == Phase.None) revert MarketUnknownTask(id);
    }

    function _phase(uint256 id, Task storage t, Phase want) internal view {
        if (t.phase != want) revert MarketWrongPhase(id, t.phase);
    }

    function _ended(uint256 id, Task storage t) internal view {
        if (t.phase == Phase.Joining || t.phase == Phase.Running) revert MarketWrongPhase(id, t.phase);
    }

    /// A stalled task's posted rounds can still be challenged (which voids a round and moves
    /// the bond): the bond and the unspent budget wait until the last window has passed.
    function _challengesOver(uint256 id, Task storage t) internal view {
        if (t.phase != Phase.Stalled || t.nextRound == 0) return;
        uint256 until = uint256(_rounds[id][t.nextRound - 1].postedAt) + t.terms.challengeWindow;
        if (block.number <= until) revert MarketTooEarly(id, until + 1);
    }

    function _end(uint256 id, Task storage t, Phase phase) internal {
        t.phase = phase;
        emit TaskEnded(id, phase, t.slashedTotal, t.honest);
    }

    function _due(Task storage t, uint256 round) internal view returns (uint256) {
        return uint256(t.boundAt) + (round + 1) * t.terms.roundPeriod;
    }

    /// What a scored round grants: its reward pool if anyone scored, its bonus pool if anyone
    /// earned the bonus, its validation pool if any validator earned it, and the part of its
    /// cost the budget covers.
    function _granted(Terms storage terms, ScoredRound storage s) internal view returns (uint256 g) {
        g = s.costPaid;
        if (s.totalScore > 0) g += _pool(terms.budget, _rewardBps(terms.bonusBps, terms.validatorBps), terms.rounds);
        if (s.bonusCount > 0) g += _pool(terms.budget, terms.bonusBps, terms.rounds);
        if (s.validatorCount > 0) g += _pool(terms.budget, terms.validatorBps, terms.rounds);
    }

    /// The part of the budget that scores share.
    function _rewardBps(uint256 bonusBps, uint256 validatorBps) internal pure returns (uint256) {
        return BPS - bonusBps - validatorBps;
    }

    /// The part `bps` of the budget that one round grants.
    function _pool(uint256 budget, uint256 bps, uint256 rounds) internal pure returns (uint256) {
        return (budget * bps) / BPS / rounds;
    }

    function _payable(uint256 id, Task storage t, uint256 round) internal view returns (ScoredRound storage s) {
        s = _rounds[id][round];
        if (s.postedAt == 0 || s.voided || block.number <= uint256(s.postedAt) + t.terms.challengeWindow)
            revert MarketRoundNotPayable(id, round);
    }

    function _pay(Task storage t, ScoredRound storage s, uint256 rate, Entry calldata e)
        internal
        view
        returns (uint256 amount)
    {
        Terms storage terms = t.terms;
        if (e.score > 0 && s.totalScore > 0)
            amount += Math.mulDiv(_pool(terms.budget, _rewardBps(terms.bonusBps, terms.validatorBps), terms.rounds), e.score, s.totalScore);
        if (e.bonus && s.bonusCount > 0) amount += _pool(terms.budget, terms.bonusBps, terms.rounds) / s.bonusCount;
        if (e.validator && s.validatorCount > 0)
            amount += _pool(terms.budget, terms.validatorBps, terms.rounds) / s.validatorCount;
        if (e.work > 0 && s.cost > 0) amount += Math.mulDiv(rate * e.work, s.costPaid, s.cost);
    }

    function _workerIndex(uint256 id, address account) internal view returns (uint256) {
        uint256 slot = _slot[id][account];
        if (slot == 0) revert MarketNotWorker(id, account);
        return slot - 1;
    }

    function _credit(uint256 id, Task storage t, address to, uint256 amount, bytes32 why) internal {
        if (amount == 0) return;
        uint256 credited = uint256(t.credited) + amount;
        if (credited > t.deposited) revert MarketOverdrawn(id);
        t.credited = uint128(credited);
        _owed[id][to] += amount;
        emit Credited(id, to, amount, why);
    }

    function _pull(IERC20 token, address from, uint256 amount) internal {
        if (amount > 0) token.safeTransferFrom(from, address(this), amount);
    }

    function _entry(bytes calldata entries, uint256 i) internal pure returns (uint64 score, uint64 work, uint8 flags) {
        uint256 at = i * ENTRY_SIZE;
        score = uint64(bytes8(entries[at:at + 8]));
        work = uint64(bytes8(entries[at + 8:at + 16]));
        flags = uint8(entries[at + 16]);
    }

    function _node(bytes32 a, bytes32 b) internal pure returns (bytes32 h) {
        assembly ("memory-safe") {
            mstore(0, a)
            mstore(0x20, b)
            h := keccak256(0, 0x40)
        }
    }

    function _root(bytes32[] memory nodes) internal pure returns (bytes32) {
        uint256 n = nodes.length;
        while (n > 1) {
            uint256 m;
            for (uint256 i = 0; i < n; i += 2) {
                nodes[m++] = i + 1 < n ? _node(nodes[i], nodes[i + 1]) : nodes[i];
            }
            n = m;
        }
        return nodes[0];
    }

    function _verify(bytes32 root, uint256 n, uint256 index, bytes32 leaf, bytes32[] calldata proof)
        internal
        pure
        returns (bool)
    {
        if (index >= n) return false;
        uint256 k;
        bytes32 h = leaf;
        while (n > 1) {
            if ((index ^ 1) < n) {
                if (k == proof.length) return false;
                h = index & 1 == 0 ? _node(h, proof[k]) : _node(proof[k], h);
                ++k;
            }
            index >>= 1;
            n = (n + 1) >> 1;
        }
        return k == proof.length && h == root;
    }
}
