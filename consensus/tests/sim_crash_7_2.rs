//! Bar (d) of the node issue, in simulation: 7 validators, 2 crashed (the most a 7-validator
//! set tolerates). Commits keep coming at a steady rate once both have left the rotation.
//! hotstuff_rs 0.4.0 committed nothing in this setting.

mod sim;

use sim::{crashed_validators_steady, for_each_seed};

#[test]
fn seven_validators_two_crashed_commit_steadily() {
    for_each_seed(3, |seed| {
        let a = (seed % 7) as usize;
        let b = (a + 1 + (seed / 7 % 6) as usize) % 7;
        crashed_validators_steady(7, &[a, b], seed);
    });
}
