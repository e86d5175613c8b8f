//! What the disk keeps of a password, judged from the register records the world reads off
//! the simulated disk, and what checking one costs. PROTOCOL.md: "Passwords are stored only
//! as argon2id hashes"; README: the hash has the argon2 cost the server was configured with,
//! and each account its own salt (a
//! salt shared by two accounts lets one precomputed table serve both, and gives two accounts
//! with one password one hash). The stored string is read as the PHC format argon2 writes
//! (`$argon2id$v=19$m=..,t=..,p=..$salt$hash`), split by hand: nothing of the server's code.

use std::collections::BTreeMap;

use super::{AccountId, Checker, ConnNo};

/// The argon2 cost the world configured its server with (memory in KiB, iterations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredCost {
    pub memory_kib: u32,
    pub iterations: u32,
}

/// The salts seen in register records, each with the account that stored it.
#[derive(Debug, Clone, Default)]
pub(super) struct Salts {
    owners: BTreeMap<String, AccountId>,
}

/// The parts of a PHC string that the rules read: the algorithm, the cost parameters and the
/// salt (`None` if it is not one).
fn phc_parts(stored: &str) -> Option<(&str, &str, &str)> {
    let mut fields = stored.split('$');
    let (empty, algorithm) = (fields.next()?, fields.next()?);
    let mut next = fields.next()?;
    if next.starts_with("v=") {
        next = fields.next()?;
    }
    let (params, salt) = (next, fields.next()?);
    (empty.is_empty() && fields.next().is_some()).then_some((algorithm, params, salt))
}

/// The value of `key` in PHC parameters like `m=8,t=2,p=1`.
fn param(params: &str, key: &str) -> Option<u32> {
    params.split(',').find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
}

impl Checker {
    /// The world configured its server's argon2 cost (before any register record).
    pub fn set_stored_cost(&mut self, cost: StoredCost) {
        self.stored_cost = Some(cost);
    }

    /// The server wrote a register record for `account` (`name`) storing `stored` as its
    /// password.
    pub fn stored_password(&mut self, now_ms: u64, account: AccountId, name: &str, stored: &str) {
        let parts = phc_parts(stored).filter(|(algorithm, ..)| *algorithm == "argon2id");
        self.expect(
            parts.is_some(),
            now_ms,
            "passwords are stored only as argon2id hashes",
            || format!("{name}'s register record stores {stored:?}"),
        );
        let Some((_, params, salt)) = parts else { return };
        if let Some(cost) = self.stored_cost {
            let (memory_kib, iterations) = (param(params, "m"), param(params, "t"));
            let configured =
                memory_kib == Some(cost.memory_kib) && iterations == Some(cost.iterations);
            self.coverage.count("stored password: cost checked");
            self.expect(configured, now_ms, "a stored hash has the configured cost", || {
                format!(
                    "{name}'s hash has parameters {params:?}; the server was configured with \
                     m={},t={}",
                    cost.memory_kib, cost.iterations
                )
            });
        }
        let owner = *self.salts.owners.entry(salt.to_owned()).or_insert(account);
        if owner != account {
            self.coverage.count("stored password: salt seen before");
        }
        self.expect(owner == account, now_ms, "every account has a salt of its own", || {
            format!("{name}'s hash has salt {salt:?}, which an earlier account's hash has too")
        });
    }

    /// A password job for `conn` ran at `spent` (the cost of its argon2 run; `None`: none
    /// ran). PROTOCOL.md: "the same reply and timing for existing and unknown names"; the
    /// simulated clock does not run argon2's time, so timing is judged by what decides it,
    /// the cost: every hash and every check of a login's password (the world's hashes all
    /// have the configured cost) runs at the configured cost, an unknown name's included.
    pub fn password_job_ran(&mut self, now_ms: u64, conn: ConnNo, spent: Option<StoredCost>) {
        let Some(cost) = self.stored_cost else { return };
        self.coverage.count("password job: cost checked");
        let invariant = "every password job costs the configured cost, for unknown names too";
        self.expect(spent == Some(cost), now_ms, invariant, || {
            format!("a password job for connection {conn} ran at {spent:?}; configured {cost:?}")
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phc_strings_are_split_into_algorithm_parameters_and_salt() {
        let stored = "$argon2id$v=19$m=8,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g";
        assert_eq!(phc_parts(stored), Some(("argon2id", "m=8,t=2,p=1", "c2FsdHNhbHQ")));
        assert_eq!(param("m=8,t=2,p=1", "t"), Some(2));
        assert_eq!(param("m=8,t=2,p=1", "m"), Some(8));
        assert_eq!(param("m=8,tt=2", "t"), None);
        assert_eq!(phc_parts("pw"), None, "a plaintext password is no PHC string");
        assert_eq!(phc_parts("$argon2id$v=19$m=8,t=2,p=1$salt"), None, "no hash");
    }
}
