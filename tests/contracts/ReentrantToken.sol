// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {TaskMarket} from "contracts/TaskMarket.sol";

/// A hostile ERC-20 for tests: it is its own task's requester, and when the market pays it,
/// its transfer calls the market's withdraw again (a reentrancy attempt).
contract ReentrantToken is ERC20 {
    TaskMarket public market;
    uint256 public task;
    bool public armed;
    uint256 public reentered; // successful nested withdraws
    bool public refused; // the nested withdraw reverted

    constructor() ERC20("hostile", "HOST") {
        _mint(address(this), 10 ** 30);
    }

    function post(TaskMarket m, TaskMarket.Terms calldata terms) external {
        market = m;
        _approve(address(this), address(m), type(uint256).max);
        task = m.createTask(terms);
    }

    function reclaimAndWithdraw() external {
        market.reclaim(task);
        armed = true;
        market.withdraw(task);
    }

    function transfer(address to, uint256 value) public override returns (bool) {
        bool ok = super.transfer(to, value);
        if (armed && msg.sender == address(market)) {
            armed = false;
            try market.withdraw(task) {
                reentered += 1;
            } catch {
                refused = true;
            }
        }
        return ok;
    }
}
