//! Password hashing for the drivers: runs the core's [`PasswordJob`]s with argon2id.
//!
//! The core never hashes (it would stall everyone behind its lock); it hands out jobs and a
//! driver runs them here, off the lock, on the requesting connection's thread.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use thiserror::Error;

use crate::core::{PasswordJob, PasswordOutcome, PasswordWork};

/// argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashCost {
    pub memory_kib: u32,
    pub iterations: u32,
}

impl Default for HashCost {
    /// OWASP's argon2id recommendation (19 MiB, 2 iterations, 1 lane).
    fn default() -> Self {
        HashCost { memory_kib: 19 * 1024, iterations: 2 }
    }
}

impl HashCost {
    /// The cheapest cost argon2 allows: for tests, simulation and benchmark setup only.
    pub const CHEAPEST: HashCost = HashCost { memory_kib: 8, iterations: 1 };
}

#[derive(Debug, Error)]
#[error("invalid argon2 cost {cost:?}: {reason}")]
pub struct HashCostError {
    cost: HashCost,
    reason: String,
}

/// Runs password jobs.
#[derive(Clone)]
pub struct Hasher {
    argon2: Argon2<'static>,
    /// Verified against when the account does not exist, so that costs the same.
    dummy_hash: String,
    /// A bug planted in the hasher (tests and `planted` builds only).
    #[cfg(any(test, feature = "planted"))]
    planted: Planted,
}

#[cfg(any(test, feature = "planted"))]
use crate::core::planted::Planted;

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher").field("params", self.argon2.params()).finish()
    }
}

impl Hasher {
    pub fn new(cost: HashCost) -> Result<Self, HashCostError> {
        Ok(Hasher {
            argon2: argon2_of(cost)?,
            dummy_hash: dummy_hash_of(cost)?,
            #[cfg(any(test, feature = "planted"))]
            planted: Planted::None,
        })
    }

    /// A hasher with `bug` planted (tests and `planted` builds only): the slip each hasher bug
    /// names, made where a mistaken `new` would make it.
    #[cfg(any(test, feature = "planted"))]
    pub fn planted(cost: HashCost, bug: Planted) -> Result<Self, HashCostError> {
        let mut hasher = Hasher::new(cost)?;
        hasher.planted = bug;
        if bug == Planted::HashCostIgnored {
            hasher.argon2 = argon2_of(HashCost { iterations: 1, ..cost })?;
        }
        if bug == Planted::DummyHashCheapest {
            hasher.dummy_hash = dummy_hash_of(HashCost::CHEAPEST)?;
        }
        Ok(hasher)
    }

    /// Runs one job. A stored hash that cannot be parsed verifies as `false`.
    pub fn run(&self, job: &PasswordJob) -> PasswordOutcome {
        self.run_measured(job).0
    }

    /// Runs one job, with the cost of the argon2 run it took, read off the instance that ran
    /// it (`None`: none ran, the stored hash could not be parsed). The cost is what decides the
    /// job's time, so the simulator, whose clock is not the CPU's, judges timing by it.
    pub fn run_measured(&self, job: &PasswordJob) -> (PasswordOutcome, Option<HashCost>) {
        match &job.work {
            PasswordWork::Hash { salt } => {
                #[cfg(any(test, feature = "planted"))]
                let salt =
                    if self.planted == Planted::HashSaltIgnored { &[0x5a; 16] } else { salt };
                let salt = SaltString::encode_b64(salt).expect("16 bytes is a valid salt");
                let hash = self
                    .argon2
                    .hash_password(job.password.as_bytes(), &salt)
                    .expect("hashing with validated parameters cannot fail");
                (PasswordOutcome::Hashed(hash.to_string()), Some(cost_of(self.argon2.params())))
            }
            PasswordWork::Verify { hash } => {
                let stored = hash.as_deref().unwrap_or(&self.dummy_hash);
                let Ok(parsed) = PasswordHash::new(stored) else {
                    return (PasswordOutcome::Verified(false), None);
                };
                // argon2 verifies with the parameters the hash records, not the instance's.
                let spent = Params::try_from(&parsed).ok().map(|params| cost_of(&params));
                let ok = self.argon2.verify_password(job.password.as_bytes(), &parsed).is_ok();
                (PasswordOutcome::Verified(ok && hash.is_some()), spent)
            }
        }
    }
}

/// The cost `params` stand for.
fn cost_of(params: &Params) -> HashCost {
    HashCost { memory_kib: params.m_cost(), iterations: params.t_cost() }
}

/// The argon2id instance of `cost` (one lane).
fn argon2_of(cost: HashCost) -> Result<Argon2<'static>, HashCostError> {
    let params = Params::new(cost.memory_kib, cost.iterations, 1, None)
        .map_err(|e| HashCostError { cost, reason: e.to_string() })?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// The stand-in hash an unknown name is verified against, at `cost` (the stored hashes').
fn dummy_hash_of(cost: HashCost) -> Result<String, HashCostError> {
    let salt = SaltString::encode_b64(&[0x5a; 16]).expect("16 bytes is a valid salt");
    Ok(argon2_of(cost)?
        .hash_password(b"no such account", &salt)
        .map_err(|e| HashCostError { cost, reason: e.to_string() })?
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{ConnId, JobId};

    fn job(password: &str, work: PasswordWork) -> PasswordJob {
        PasswordJob { job: JobId(0), conn: ConnId(0), password: password.into(), work }
    }

    #[test]
    fn hash_then_verify() {
        let hasher = Hasher::new(HashCost::CHEAPEST).unwrap();
        let PasswordOutcome::Hashed(hash) =
            hasher.run(&job("pw", PasswordWork::Hash { salt: [1; 16] }))
        else {
            panic!("expected a hash")
        };
        assert!(hash.starts_with("$argon2id$"));
        let verify =
            |pw: &str, hash: Option<String>| hasher.run(&job(pw, PasswordWork::Verify { hash }));
        assert_eq!(verify("pw", Some(hash.clone())), PasswordOutcome::Verified(true));
        assert_eq!(verify("PW", Some(hash)), PasswordOutcome::Verified(false));
        assert_eq!(verify("no such account", None), PasswordOutcome::Verified(false));
        assert_eq!(verify("pw", Some("garbage".into())), PasswordOutcome::Verified(false));
    }

    /// The parameters a PHC hash string records: algorithm, version, and `m`, `t`, `p`.
    fn params_of(hash: &str) -> (String, Option<u32>, Vec<(String, String)>) {
        let parsed = PasswordHash::new(hash).expect("a PHC string");
        let params = parsed.params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        (parsed.algorithm.to_string(), parsed.version, params)
    }

    fn hash(hasher: &Hasher, password: &str, salt: [u8; 16]) -> String {
        match hasher.run(&job(password, PasswordWork::Hash { salt })) {
            PasswordOutcome::Hashed(hash) => hash,
            other => panic!("expected a hash, got {other:?}"),
        }
    }

    /// The core draws a salt per account (`SaltNotDrawn` plants that slip in the core); the
    /// hasher must use it, or two accounts with one password store one hash.
    #[test]
    fn a_hash_uses_the_salt_the_core_drew_unless_planted() {
        for (planted, honest) in [(Planted::None, true), (Planted::HashSaltIgnored, false)] {
            let hasher = Hasher::planted(HashCost::CHEAPEST, planted).unwrap();
            let (one, two) = (hash(&hasher, "pw", [1; 16]), hash(&hasher, "pw", [2; 16]));
            let salt = PasswordHash::new(&one).unwrap().salt.map(|s| s.to_string());
            let drawn = SaltString::encode_b64(&[1; 16]).unwrap().to_string();
            assert_eq!(salt == Some(drawn) && one != two, honest, "{planted:?}: {one} {two}");
        }
    }

    /// The configured cost is the cost of every stored hash (argon2id, one lane).
    #[test]
    fn a_hash_has_the_configured_cost_unless_planted() {
        let cost = HashCost { memory_kib: 64, iterations: 3 };
        for (planted, honest) in [(Planted::None, true), (Planted::HashCostIgnored, false)] {
            let hasher = Hasher::planted(cost, planted).unwrap();
            let (algorithm, version, params) = params_of(&hash(&hasher, "pw", [1; 16]));
            assert_eq!((algorithm.as_str(), version), ("argon2id", Some(19)));
            let expected = [("m", "64"), ("t", "3"), ("p", "1")];
            let expected: Vec<_> = expected.map(|(k, v)| (k.to_owned(), v.to_owned())).into();
            assert_eq!(params == expected, honest, "{planted:?}: {params:?}");
        }
    }

    /// PROTOCOL.md: "the same reply and timing for existing and unknown names". An unknown
    /// name is verified against a stand-in hash, which must cost what a stored hash costs
    /// (the same algorithm and parameters), or the reply's delay tells the names apart.
    /// Timing itself is not asserted; the parameters that decide it are.
    #[test]
    fn an_unknown_name_costs_what_a_stored_hash_costs_unless_planted() {
        let cost = HashCost { memory_kib: 64, iterations: 3 };
        for (planted, honest) in [(Planted::None, true), (Planted::DummyHashCheapest, false)] {
            let hasher = Hasher::planted(cost, planted).unwrap();
            let stored = params_of(&hash(&hasher, "pw", [1; 16]));
            let stand_in = params_of(&hasher.dummy_hash);
            assert_eq!(stored == stand_in, honest, "{planted:?}: {stored:?} {stand_in:?}");
        }
    }

    /// What a job measures is what it ran: the configured cost for a hash, a stored hash's
    /// own cost for its verification, the stand-in's for an unknown name, nothing for a
    /// stored hash that does not parse.
    #[test]
    fn a_job_measures_the_cost_it_ran_at() {
        let cost = HashCost { memory_kib: 64, iterations: 3 };
        for planted in [Planted::None, Planted::DummyHashCheapest] {
            let hasher = Hasher::planted(cost, planted).unwrap();
            let hashing = job("pw", PasswordWork::Hash { salt: [1; 16] });
            let (PasswordOutcome::Hashed(stored), Some(spent)) = hasher.run_measured(&hashing)
            else {
                panic!("a hash job hashes")
            };
            assert_eq!(spent, cost);
            let cheap = hash(&Hasher::new(HashCost::CHEAPEST).unwrap(), "pw", [2; 16]);
            let verify = |hash: Option<String>| {
                hasher.run_measured(&job("pw", PasswordWork::Verify { hash })).1
            };
            assert_eq!(verify(Some(stored)), Some(cost));
            assert_eq!(verify(Some(cheap)), Some(HashCost::CHEAPEST));
            assert_eq!(verify(Some("garbage".into())), None);
            let unknown = if planted == Planted::None { cost } else { HashCost::CHEAPEST };
            assert_eq!(verify(None), Some(unknown), "{planted:?}");
        }
    }
}
