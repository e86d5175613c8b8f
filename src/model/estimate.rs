//! An estimate of how many distinct states a search would find, per depth, without finding
//! them (`chatroom check --estimate N`): for scenarios too large to explore, so that we can
//! say by how much a bound misses.
//!
//! Knuth's estimator counts the nodes of a tree from random probes; the state graph is not a
//! tree (many paths reach one state), so counting paths would overcount by the number of
//! orders in which independent steps can run. This is its weighted, many-probe form (sequential
//! importance sampling with resampling) corrected for that: `N` sample states ("particles") are
//! kept per depth, each standing for `w` states of its depth (the weights sum to the estimate of
//! the depth's size). A particle's distinct successors `v` (by fingerprint) each stand for
//! `w / k(v)` states of the next depth, where `k(v)` is how many distinct states of the
//! particle's depth lead to `v`: a state with `k` parents is reached from each of them, so
//! `sum over edges (u, v) of 1 / k(v)` counts every state once. `N` successors, drawn in
//! proportion to their weights (systematic resampling, seeded), become the next particles,
//! each weighing the next depth's estimate divided by `N`.
//!
//! `k(v)` is found, not guessed, but only in part: for the particle's path `s_1 .. s_d` and the
//! step `t` to `v`, each `s_j` that is independent ([`super::por::independent`]) of every
//! later step and of `t` may have come last instead; the path with `s_j` moved to the end is
//! replayed, and if it is possible and ends at `v` (same fingerprint), the state before its
//! last step is a parent of `v`. `k(v)` is the number of distinct parents found, the
//! particle's own included. Parents that are not such reorderings of the particle's path (two
//! histories that end alike for other reasons) are not found, so `k` can be too small and the
//! estimate too large; the estimate also assumes that a state first reached at depth `d` is
//! reached by no longer path (which the breadth-first search would not count again).
//!
//! Measured where the exact counts are known (1,000 samples, seeds 1 to 5), it mostly errs
//! high but not always: 0.69 to 7.8 times the 747,845 states of `--users 3 --ops 4 --faults 0`
//! (5.2e5 to 5.8e6, median 6.3x), and 4.5 to 6.7 times the 2,279,991 of `--users 3 --ops 3
//! --faults 1` (1.0e7 to 1.5e7). It errs high where operations refused alike (a wasted `list`
//! and a wasted `login` lead to one state) merge histories that are not reorderings of each
//! other; it can also err low (seed 2 on `--ops 4`, 0.69x), presumably when a depth's samples
//! miss the states that branch most. So it gives a space's order of magnitude, within
//! about ten times either way; run several seeds, and read their spread as its noise.
//!
//! Deterministic for a seed: no threads, no wall clock, the generator (ChaCha8, the project's
//! `rand_chacha`) is seeded.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::driver::State;
use super::explorer::Search;
use super::fingerprint::{fingerprint, permutations, Fingerprint};
use super::step::{Step, User};

/// The estimated state counts of a search.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    /// Estimated distinct states at each depth, from the root's 1.
    pub layers: Vec<f64>,
    /// Transitions run (successors computed and reorderings replayed).
    pub steps: u64,
    /// Successors that violated an invariant (not counted: a search would stop there).
    pub violations: u64,
}

impl Estimate {
    /// The estimated number of distinct states, every depth together.
    pub fn total(&self) -> f64 {
        self.layers.iter().sum()
    }
}

/// A sample state: the path to it, the worlds along that path (`worlds[j]` after `j` steps),
/// and how many states of its depth it stands for.
struct Particle {
    path: Vec<Step>,
    worlds: Vec<State>,
    weight: f64,
}

/// A successor of a particle, weighed.
struct Candidate {
    parent: usize,
    step: Step,
    world: State,
    weight: f64,
}

/// Estimates the distinct states of `scenario`'s search at each depth with `particles`
/// sample states per depth, drawn with the generator seeded by `seed`.
pub fn estimate(scenario: &Search, particles: usize, seed: u64) -> Estimate {
    let renamings: Vec<Vec<User>> = if scenario.symmetry {
        permutations(scenario.bounds.users)
    } else {
        vec![(0..scenario.bounds.users as User).collect()]
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut scratch = (Vec::new(), Vec::new());
    let mut buf = Vec::new();
    let mut steps = Vec::new();
    let root = scenario.world();
    let mut population = vec![Particle { path: Vec::new(), worlds: vec![root], weight: 1.0 }];
    let mut result = Estimate { layers: vec![1.0], steps: 0, violations: 0 };
    loop {
        let mut candidates = Vec::new();
        for (index, particle) in population.iter().enumerate() {
            let world = particle.worlds.last().expect("the root at least");
            world.enabled(&scenario.bounds, &mut steps);
            // Distinct successors by fingerprint: two steps may lead to one state (renamed).
            let mut children: Vec<(Fingerprint, Step, State)> = Vec::new();
            for &step in &steps {
                let mut child = world.clone();
                result.steps += 1;
                if child.step(step).is_err() {
                    result.violations += 1;
                    continue;
                }
                let print = fingerprint(&child, &renamings, &mut buf);
                if children.iter().all(|(p, _, _)| *p != print) {
                    children.push((print, step, child));
                }
            }
            for (print, step, child) in children {
                let parents =
                    parents_found(particle, step, print, scenario, &renamings, &mut scratch);
                result.steps += parents.1;
                let weight = particle.weight / parents.0 as f64;
                candidates.push(Candidate { parent: index, step, world: child, weight });
            }
        }
        if candidates.is_empty() {
            return result;
        }
        let total: f64 = candidates.iter().map(|c| c.weight).sum();
        result.layers.push(total);
        population = resample(&population, candidates, particles, total, &mut rng);
    }
}

/// How many distinct parents of the successor `print` (reached by `step`) are found among the
/// states that `particle`'s path followed by `step`, with one step left out, leads to (at least
/// 1, the particle), and the steps run to find them.
fn parents_found(
    particle: &Particle,
    step: Step,
    print: Fingerprint,
    scenario: &Search,
    renamings: &[Vec<User>],
    scratch: &mut (Vec<u8>, Vec<Step>),
) -> (usize, u64) {
    let (buf, steps) = scratch;
    let own = fingerprint(particle.worlds.last().expect("the root at least"), renamings, buf);
    let mut parents = vec![own];
    let mut run = 0;
    let path = &particle.path;
    'left_out: for j in 0..path.len() {
        // From the world before the step left out: the later steps, then `step`.
        let mut world = particle.worlds[j].clone();
        for &s in path[j + 1..].iter().chain(std::iter::once(&step)) {
            run += 1;
            if !world.possible(s) || world.step(s).is_err() {
                continue 'left_out;
            }
        }
        let parent = fingerprint(&world, renamings, buf);
        if parents.contains(&parent) {
            continue;
        }
        world.enabled(&scenario.bounds, steps);
        for &last in steps.iter() {
            let mut child = world.clone();
            run += 1;
            if child.step(last).is_ok() && fingerprint(&child, renamings, buf) == print {
                parents.push(parent);
                break;
            }
        }
    }
    (parents.len(), run)
}

/// `n` of `candidates`, drawn in proportion to their weights (systematic resampling: one
/// uniform offset, then evenly spaced), each weighing `total / n`.
fn resample(
    population: &[Particle],
    candidates: Vec<Candidate>,
    n: usize,
    total: f64,
    rng: &mut ChaCha8Rng,
) -> Vec<Particle> {
    let spacing = total / n as f64;
    let mut next = Vec::with_capacity(n);
    let mut mark = rng.gen::<f64>() * spacing;
    let mut cumulative = 0.0;
    for candidate in candidates {
        cumulative += candidate.weight;
        while mark < cumulative && next.len() < n {
            let parent = &population[candidate.parent];
            let mut path = parent.path.clone();
            path.push(candidate.step);
            let mut worlds = parent.worlds.clone();
            worlds.push(candidate.world.clone());
            next.push(Particle { path, worlds, weight: spacing });
            mark += spacing;
        }
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::driver::{Bounds, STALL_STEPS_DEFAULT};
    use crate::model::explorer::{explore, Limits};

    /// On a space small enough to count: depth 1 is exact (every state there has the root
    /// alone for a parent), and the total is within the spread measured where exact counts are
    /// known (0.69 to 7.8 times on `--users 3 --ops 4`, 1,000 samples, seeds 1 to 5; 7.0 here),
    /// with a margin: it can err low as well as high.
    #[test]
    fn the_estimate_is_within_its_measured_spread() {
        let bounds = Bounds {
            users: 2,
            ops: 3,
            faults: 1,
            tickets: false,
            intruders: false,
            stalls: 1,
            stall_steps: STALL_STEPS_DEFAULT,
            pipeline: 1,
        };
        let scenario = Search::new(bounds);
        let report = explore(&scenario, Limits { states_max: u64::MAX, jobs: 1 }, &mut |_| {
            std::ops::ControlFlow::Continue(())
        });
        assert!(report.complete);
        let exact = report.progress.unique as f64;
        let estimate = estimate(&scenario, 200, 1);
        assert_eq!(estimate.layers[..2], [1.0, report.layers[1] as f64]);
        let ratio = estimate.total() / exact;
        assert!((0.5..=10.0).contains(&ratio), "estimate {estimate:?} against {exact}");
    }
}
