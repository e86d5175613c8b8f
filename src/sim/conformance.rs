//! One conversation, two transports: the [`Conversation`] trait lets a test body talk to the
//! server through the simulator ([`SimConversation`]) or over real TCP (the conformance test in
//! `tests/sim_conformance.rs` implements it with the same [`super::client::Client`] state
//! machine over sockets), so the simulator is held to what the real server does.

use super::options::FaultMix;
use super::scenario::Op;
use super::world::{Seen, World};

/// A client-level conversation with a server.
pub trait Conversation {
    /// Client `client` (numbered from 0, created on first use) performs `op` and waits for its
    /// reply; returns the reply body for a request, `None` for other operations.
    fn perform(&mut self, client: usize, op: Op) -> Option<String>;
    /// Waits until `client`'s relay has received `n` more pushes; returns them as
    /// `SENDER:TEXT` (message texts carry the `#C.K ` tag of scenario files).
    fn pushes(&mut self, client: usize, n: usize) -> Vec<String>;
}

/// Simulated time a conversation step may take before it is abandoned.
const WAIT_MS_MAX: u64 = 60_000;

/// A [`Conversation`] with the simulated server (fault-free network unless told otherwise).
pub struct SimConversation {
    world: World,
    clients: usize,
    pushes: Vec<Vec<String>>,
}

impl SimConversation {
    pub fn new(seed: u64, mix: FaultMix) -> Self {
        SimConversation { world: World::manual(seed, mix), clients: 0, pushes: Vec::new() }
    }

    /// The world, to check its invariants afterwards.
    pub fn world(&self) -> &World {
        &self.world
    }

    fn ensure(&mut self, client: usize) {
        while self.clients <= client {
            assert_eq!(self.world.add_manual_client(), self.clients);
            self.clients += 1;
            self.pushes.push(Vec::new());
        }
    }

    fn file(&mut self, client: usize, seen: Vec<Seen>) -> Option<String> {
        let mut reply = None;
        for s in seen {
            match s {
                Seen::Reply(body) => reply = Some(body),
                Seen::Push(push) => self.pushes[client].push(push),
            }
        }
        reply
    }
}

impl Conversation for SimConversation {
    fn perform(&mut self, client: usize, op: Op) -> Option<String> {
        self.ensure(client);
        let seen = self.world.perform(client, op, WAIT_MS_MAX);
        self.file(client, seen)
    }

    fn pushes(&mut self, client: usize, n: usize) -> Vec<String> {
        self.ensure(client);
        let have = self.pushes[client].len();
        let seen = self.world.wait_for(client, WAIT_MS_MAX, |seen| {
            have + seen.iter().filter(|s| matches!(s, Seen::Push(_))).count() >= n
        });
        self.file(client, seen);
        let got: Vec<String> = self.pushes[client].drain(..).collect();
        got
    }
}
