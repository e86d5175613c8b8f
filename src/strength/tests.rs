//! The strength report's checkers and verdict, on a few fast bugs.

use super::report::*;
use super::StrengthArgs;
use crate::core::planted::Planted;

fn args() -> StrengthArgs {
    StrengthArgs {
        seeds: 100,
        jobs: 2,
        shrink_budget_s: 60,
        model_states_max: 100_000,
        bugs: Vec::new(),
        out: None,
    }
}

#[test]
fn a_bug_is_caught_by_the_simulator_shrunk_and_found_by_the_model_checker() {
    // A bug whose first failing seed shows it as itself: `TakeoverLosesMessage`, once used
    // here, now first shows (seed 1) as waiting messages over their bound on bytes, which
    // needs a dozen sends and registrations to fill.
    let rows = check_bug(Planted::DropOnDetach, &args());
    assert_eq!(rows.len(), 2, "{rows:#?}");
    let sim = &rows[0];
    assert!(matches!(&sim.found, Found::Caught(how) if how.starts_with("seed ")), "{sim:?}");
    assert_eq!(sim.invariant, "no acknowledged message is lost", "{sim:?}");
    assert!(sim.size.contains(" ops, 0 faults"), "{sim:?}");
    let ops: usize =
        sim.size.split(" -> ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!(ops <= 12, "{sim:?}");
    assert!(!sim.size.contains("replay"), "the shrunk file replays as the same failure: {sim:?}");
    assert!(sim.shrink_s.is_some());
    let model = &rows[1];
    assert!(matches!(&model.found, Found::Caught(how) if how.ends_with(" states")), "{model:?}");
    assert_eq!(model.invariant, "message-lost");
    assert!(escaped(&[Planted::DropOnDetach], &rows).is_empty());
}

#[test]
fn the_core_driver_rows_catch_their_two_bugs_by_the_check_that_names_them() {
    let args = StrengthArgs { seeds: 1, ..args() };
    let rows = check_bug(Planted::InboundUnbounded, &args);
    let driver = rows.iter().find(|r| r.checker.starts_with("core driver")).expect("a row");
    assert!(matches!(driver.found, Found::Caught(_)), "{driver:?}");
    assert!(driver.invariant.contains("buffers"), "{driver:?}");
    let rows = check_bug(Planted::ReplyBeforeDurable, &args);
    let driver = rows.iter().find(|r| r.checker.starts_with("core driver")).expect("a row");
    assert!(driver.invariant.contains("acknowledged before its record was durable"), "{driver:?}");
}

#[test]
fn a_bug_that_no_checker_catches_escapes_and_one_checked_elsewhere_does_not() {
    let row = |bug: &str, found: Found| Row {
        bug: bug.into(),
        checker: "c".into(),
        found,
        invariant: "-".into(),
        size: "-".into(),
        shrink_s: None,
    };
    let rows = [
        row("DropOnDetach", Found::Escaped("not in 10 seeds".into())),
        row("EmptyTextAccepted", Found::Escaped("not in 10 seeds".into())),
        row("EmptyTextAccepted", Found::Elsewhere("cargo test".into())),
        row("HostClosesEarly", Found::Caught("seed 3".into())),
    ];
    let bugs = [Planted::DropOnDetach, Planted::EmptyTextAccepted, Planted::HostClosesEarly];
    assert_eq!(escaped(&bugs, &rows), ["DropOnDetach"]);
    let table = table(&rows);
    assert!(table.contains("| DropOnDetach | c | **escaped** (not in 10 seeds) |"), "{table}");
    assert!(summary(&rows, &escaped(&bugs, &rows), 1.0).ends_with("ESCAPED: DropOnDetach"));
}
