// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/// @title RewardToken: the ERC-20 (with EIP-2612 permit) a task market pays in on a local chain
/// @notice The whole supply is minted once, to the deployer (the requester of a simulated run,
/// who hands workers the tokens they stake). On a real network use any ERC-20 by address.
contract RewardToken is ERC20, ERC20Permit {
    constructor(string memory name_, string memory symbol_, uint256 supply)
        ERC20(name_, symbol_)
        ERC20Permit(name_)
    {
        _mint(msg.sender, supply);
    }
}
