//! Tests of the whole simulator: sweeps pass, runs are deterministic, planted bugs are caught.

use super::*;
use crate::core::planted::Planted;

fn quick(faults: FaultMode) -> RunOptions {
    RunOptions { faults, clients: 3, ops: 25, names: 4, ..RunOptions::default() }
}

#[test]
fn a_fault_free_world_passes() {
    let outcome = run_seed(1, &quick(FaultMode::None));
    assert!(outcome.violation.is_none(), "{:?}", outcome.violation);
    assert!(outcome.delivered > 0, "messages were delivered");
}
