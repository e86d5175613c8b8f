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
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher").field("params", self.argon2.params()).finish()
    }
}

impl Hasher {
    pub fn new(cost: HashCost) -> Result<Self, HashCostError> {
        let params = Params::new(cost.memory_kib, cost.iterations, 1, None)
            .map_err(|e| HashCostError { cost, reason: e.to_string() })?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let salt = SaltString::encode_b64(&[0x5a; 16]).expect("16 bytes is a valid salt");
        let dummy_hash = argon2
            .hash_password(b"no such account", &salt)
            .map_err(|e| HashCostError { cost, reason: e.to_string() })?
            .to_string();
        Ok(Hasher { argon2, dummy_hash })
    }

    /// Runs one job. A stored hash that cannot be parsed verifies as `false`.
    pub fn run(&self, job: &PasswordJob) -> PasswordOutcome {
        match &job.work {
            PasswordWork::Hash { salt } => {
                let salt = SaltString::encode_b64(salt).expect("16 bytes is a valid salt");
                let hash = self
                    .argon2
                    .hash_password(job.password.as_bytes(), &salt)
                    .expect("hashing with validated parameters cannot fail");
                PasswordOutcome::Hashed(hash.to_string())
            }
            PasswordWork::Verify { hash } => {
                let stored = hash.as_deref().unwrap_or(&self.dummy_hash);
                let ok = PasswordHash::new(stored).is_ok_and(|h| {
                    self.argon2.verify_password(job.password.as_bytes(), &h).is_ok()
                });
                PasswordOutcome::Verified(ok && hash.is_some())
            }
        }
    }
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
}
