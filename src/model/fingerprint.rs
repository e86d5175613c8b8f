//! State fingerprints: a canonical encoding of what a [`State`] will do next, hashed to 128 bits,
//! minimised over every renaming of the users so that symmetric states count once.
//!
//! The encoding keeps only what decides the future and the invariants: budgets used, for every
//! user the model's account, session, relay and send counter, the queue (as message names),
//! how many pushes the relay has not reported, and the latest message of each sender that relay
//! received (enough to notice a duplicate or a reordering later), the messages discarded with
//! deleted accounts of each name (which a later account must never get); plus the creation order of the
//! accounts (which `list` shows). The disk: whether it is stalled, the model's durable accounts
//! and queues, the effects not yet durable (which a crash may keep or lose), and, per
//! connection, the outputs the core still holds behind unsynced records (their texts with
//! user names renamed). With pipelining clients, also the requests they sent that the server
//! has not read yet and the order in which the sync will serve them. It leaves out what differs between equivalent histories: ids
//! (lsns, connection numbers), password hashes, the rng, the log, connections that a takeover
//! left logged out. Messages are named by sender and a sequence number renumbered among the
//! numbers the encoding mentions (`Seqs`): only their order matters, so a message that no
//! queue, relay or reply mentions any more (sent to an unknown name, or delivered and its
//! relay closed) no longer tells two states apart. The core's own state is not read here:
//! after every step the driver has checked that it agrees with the model, so the model's state
//! stands for it.
//!
//! Symmetry: all users have the same operations, names of equal length and the same password,
//! and nothing in the server orders users by name, so renaming users maps behaviours to
//! behaviours and invariants to invariants. The fingerprint is the least hash over the
//! renamings that sort users by their *shape* (a summary of a user that renaming does not
//! change: budget used, account, queue length, session, relay, ...). A renaming maps a state's
//! sorting renamings onto its image's, so symmetric states get the same least hash; and most
//! states have few users of equal shape, so few of the n! renamings are encoded.

use super::driver::{RelayConn, State};
use super::reference::{Command, Effect, Relay};
use super::step::{message_seq, user_of_name, MsgKey, Op, Seen};
use super::step::{User, USERS_MAX};
use crate::core::ConnId;

/// A 128-bit state fingerprint (collisions are negligible at the state counts explored).
pub type Fingerprint = u128;

/// Every permutation of `0..n`, in lexicographic order.
pub fn permutations(n: usize) -> Vec<Vec<User>> {
    let mut all = Vec::new();
    let mut current: Vec<User> = (0..n as User).collect();
    permute(&mut current, 0, &mut all);
    all.sort();
    all
}

fn permute(items: &mut Vec<User>, at: usize, out: &mut Vec<Vec<User>>) {
    if at == items.len() {
        out.push(items.clone());
        return;
    }
    for i in at..items.len() {
        items.swap(at, i);
        permute(items, at + 1, out);
        items.swap(at, i);
    }
}

/// The budgets a state has spent, as the encoding writes them: read from the state, or
/// lowered, to fingerprint a state that differs from it only in having spent less
/// ([`lowered`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spent {
    pub faults: u8,
    pub stalls: u8,
    /// Steps the current stall has lasted since it began to hold something back.
    pub stall_len: u8,
    pub ops: [u8; USERS_MAX],
}

impl Spent {
    pub fn of(world: &State) -> Spent {
        Spent {
            faults: world.faults_used,
            stalls: world.stalls_used,
            stall_len: world.stall_len,
            ops: world.ops_used,
        }
    }
}

/// The fingerprint of `world`, least over `renamings` (each maps old user to new user):
/// either the identity alone (no symmetry reduction) or every permutation, of which only those
/// sorting users by shape are encoded.
/// `buf` is scratch space reused between calls.
pub fn fingerprint(world: &State, renamings: &[Vec<User>], buf: &mut Vec<u8>) -> Fingerprint {
    least_renamings(world, &Spent::of(world), &Seqs::of(world), renamings, buf, None)
}

/// Like [`fingerprint`], and also lists in `least` the indices (into `renamings`) of every
/// renaming that gives the least hash: those that map `world` onto its canonical form. There
/// are several when the state is symmetric in itself (two users in the same situation).
pub fn canonical_renamings(
    world: &State,
    renamings: &[Vec<User>],
    buf: &mut Vec<u8>,
    least: &mut Vec<usize>,
) -> Fingerprint {
    least_renamings(world, &Spent::of(world), &Seqs::of(world), renamings, buf, Some(least))
}

/// The fingerprint `world` would have had it spent `spent` instead: the fingerprint of a state
/// that differs from it in the budgets alone (for checking that a subsuming state stays one).
pub fn fingerprint_spent(
    world: &State,
    spent: &Spent,
    renamings: &[Vec<User>],
    buf: &mut Vec<u8>,
) -> Fingerprint {
    least_renamings(world, spent, &Seqs::of(world), renamings, buf, None)
}

/// Into `out`, the fingerprints of the states that differ from `world` only in having spent
/// one less of one budget (the faults, the stalls, the steps of the current stall, one user's
/// operations), for each budget `world` spent any of: the states whose having been visited
/// lets the explorer skip `world` ([`super::explorer`] says why that is sound).
pub fn lowered(
    world: &State,
    renamings: &[Vec<User>],
    buf: &mut Vec<u8>,
    out: &mut Vec<Fingerprint>,
) {
    let mut encodings = Encodings { bytes: std::mem::take(buf), ..Encodings::default() };
    encodings.fingerprint(world, renamings);
    encodings.lowered(world, renamings, out);
    *buf = encodings.bytes;
}

/// The encodings of the state fingerprinted last, under the renamings its fingerprint tried,
/// kept for [`Encodings::lowered`]: a state's budgets are only written into its encoding (a
/// byte each, at places that do not depend on their values) and into its users' shapes (an
/// operation count is the top byte of its user's shape), so the fingerprint of the same state
/// with a budget lowered patches those bytes in an encoding already made instead of encoding
/// the state again. Scratch space, reused between states.
#[derive(Default)]
pub struct Encodings {
    /// The encodings made, one after the other.
    bytes: Vec<u8>,
    /// Per renaming, where its encoding lies in `bytes`, once made.
    spans: Vec<Option<Span>>,
    spent: Option<Spent>,
    seqs: Seqs,
    /// Per user, its shape but for the operations spent ([`shape_rest`]).
    rests: [u64; USERS_MAX],
}

/// Where one renaming's encoding lies in [`Encodings::bytes`], and where in it (from its start)
/// each new user's operation count is written.
#[derive(Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    ops_at: [usize; USERS_MAX],
}

impl Encodings {
    /// [`fingerprint`], keeping the encodings it makes (for [`Encodings::lowered`]).
    pub fn fingerprint(&mut self, world: &State, renamings: &[Vec<User>]) -> Fingerprint {
        let spent = Spent::of(world);
        self.bytes.clear();
        self.spans.clear();
        self.spans.resize(renamings.len(), None);
        self.spent = Some(spent);
        self.seqs = Seqs::of(world);
        for user in 0..world.users.len() {
            self.rests[user] = shape_rest(world, user, &self.seqs);
        }
        self.least(world, &spent, renamings)
    }

    /// [`lowered`] of `world`, which must be the state [`Encodings::fingerprint`] was given
    /// last.
    pub fn lowered(&mut self, world: &State, renamings: &[Vec<User>], out: &mut Vec<Fingerprint>) {
        out.clear();
        let spent = self.spent.expect("the state was fingerprinted");
        let mut lower = |change: &dyn Fn(&mut Spent) -> bool| {
            let mut less = spent;
            if change(&mut less) {
                out.push(self.least(world, &less, renamings));
            }
        };
        let dec = |field: &mut u8| field.checked_sub(1).map(|n| *field = n).is_some();
        lower(&|s| dec(&mut s.faults));
        lower(&|s| dec(&mut s.stalls));
        lower(&|s| dec(&mut s.stall_len));
        for user in 0..world.users.len() {
            lower(&|s| dec(&mut s.ops[user]));
        }
    }

    /// The least hash over the renamings that sort users by shape, of `world`'s encodings with
    /// the budgets `spent` written in.
    fn least(&mut self, world: &State, spent: &Spent, renamings: &[Vec<User>]) -> Fingerprint {
        let mut shapes = [0u64; USERS_MAX];
        for (user, shape) in shapes.iter_mut().enumerate().take(world.users.len()) {
            *shape = shape_with(spent.ops[user], self.rests[user]);
        }
        let blocks = ShapeBlocks::of(&shapes, world.users.len());
        let mut best = Fingerprint::MAX;
        for (index, rename) in renamings.iter().enumerate() {
            if renamings.len() > 1 && !blocks.sorted_by(rename) {
                continue;
            }
            let span = match self.spans[index] {
                Some(span) => span,
                None => self.encode(index, world, rename),
            };
            best = best.min(self.hash_with(span, spent, rename));
        }
        best
    }

    /// Encodes `world` under renaming `index` (`rename`), with the budgets it spent.
    fn encode(&mut self, index: usize, world: &State, rename: &[User]) -> Span {
        let spent = self.spent.expect("the state was fingerprinted");
        let start = self.bytes.len();
        let mut ops_at = [0; USERS_MAX];
        encode_at(world, &spent, rename, &self.seqs, &mut self.bytes, &mut ops_at);
        let span = Span { start, end: self.bytes.len(), ops_at };
        self.spans[index] = Some(span);
        span
    }

    /// The hash of the encoding in `span` with the budgets `spent` written in place of those
    /// it was made with (put back after).
    fn hash_with(&mut self, span: Span, spent: &Spent, rename: &[User]) -> Fingerprint {
        let made = self.spent.expect("the state was fingerprinted");
        let bytes = &mut self.bytes[span.start..span.end];
        if *spent == made {
            return hash128(bytes);
        }
        let mut by_new = [0; USERS_MAX];
        for (old, &new) in rename.iter().enumerate() {
            by_new[new as usize] = old;
        }
        let users = rename.len();
        let places = [0, 1, 2].into_iter().chain(span.ops_at[..users].iter().copied());
        let values = [spent.faults, spent.stalls, spent.stall_len]
            .into_iter()
            .chain(by_new[..users].iter().map(|&old| spent.ops[old]));
        let mut kept = [0u8; 3 + USERS_MAX];
        for ((at, value), kept) in places.clone().zip(values).zip(&mut kept) {
            *kept = std::mem::replace(&mut bytes[at], value);
        }
        let hash = hash128(bytes);
        for (at, kept) in places.zip(kept) {
            bytes[at] = kept;
        }
        hash
    }
}

fn least_renamings(
    world: &State,
    spent: &Spent,
    seqs: &Seqs,
    renamings: &[Vec<User>],
    buf: &mut Vec<u8>,
    mut least: Option<&mut Vec<usize>>,
) -> Fingerprint {
    let mut shapes = [0u64; USERS_MAX];
    for (user, shape) in shapes.iter_mut().enumerate().take(world.users.len()) {
        *shape = shape_of(world, spent, user, seqs);
    }
    let blocks = ShapeBlocks::of(&shapes, world.users.len());
    let mut best = Fingerprint::MAX;
    if let Some(least) = least.as_deref_mut() {
        least.clear();
    }
    for (index, rename) in renamings.iter().enumerate() {
        if renamings.len() > 1 && !blocks.sorted_by(rename) {
            continue;
        }
        buf.clear();
        encode_with(world, spent, rename, seqs, buf);
        let hash = hash128(buf);
        if let Some(least) = least.as_deref_mut() {
            if hash < best {
                least.clear();
            }
            if hash <= best {
                least.push(index);
            }
        }
        best = best.min(hash);
    }
    best
}

/// A summary of `user` that renaming users does not change, computed only from what
/// [`encode`] writes (otherwise states with equal encodings could sort differently and fail to
/// merge).
fn shape_of(world: &State, spent: &Spent, user: usize, seqs: &Seqs) -> u64 {
    shape_with(spent.ops[user], shape_rest(world, user, seqs))
}

/// A shape from the user's operations spent (its top byte) and [`shape_rest`].
fn shape_with(ops: u8, rest: u64) -> u64 {
    (u64::from(ops) << 56) | rest
}

/// The shape of `user` but for its operations spent (the low seven bytes).
fn shape_rest(world: &State, user: usize, seqs: &Seqs) -> u64 {
    let model = &world.model.users[user];
    let queue_len = model.account.as_ref().map_or(0xff, |a| a.queue.len() as u64);
    let relay = world.users[user].relay.as_ref();
    let fields = [
        model.command as u64
            + u64::from(model.asked_ticket) * 4
            + u64::from(model.ticket_spent && world.hostile) * 8,
        model.relay.map_or(0, |r| r as u64 + 1),
        u64::from(seqs.sends(world, user as User)),
        queue_len,
        model.discarded.len() as u64,
        relay.map_or(0xff, |r| r.unreported.len() as u64),
        world.users[user].command.map_or(0xff, |c| world.owed_len(c) as u64),
    ];
    fields.iter().fold(0, |acc, &field| (acc << 8) | (field & 0xff))
}

/// Where each user goes when users are listed in non-decreasing shape: the block of new
/// names from `first[u]` (the users of lesser shape) to `first[u] + equal[u]` (those of the
/// same shape, `u` among them). Computed once per state and budget, so that each renaming is
/// checked in a few comparisons.
struct ShapeBlocks {
    first: [User; USERS_MAX],
    equal: [User; USERS_MAX],
}

impl ShapeBlocks {
    fn of(shapes: &[u64; USERS_MAX], users: usize) -> ShapeBlocks {
        let mut blocks = ShapeBlocks { first: [0; USERS_MAX], equal: [0; USERS_MAX] };
        for user in 0..users {
            for other in &shapes[..users] {
                blocks.first[user] += User::from(*other < shapes[user]);
                blocks.equal[user] += User::from(*other == shapes[user]);
            }
        }
        blocks
    }

    /// Whether `rename` (old -> new) lists users in non-decreasing shape: it puts every user
    /// in its block (a permutation that does is sorted, and a sorted one must).
    fn sorted_by(&self, rename: &[User]) -> bool {
        let blocks = self.first.iter().zip(&self.equal);
        rename.iter().zip(blocks).all(|(&new, (&first, &equal))| new.wrapping_sub(first) < equal)
    }
}

/// Appends the encoding of `world` with users renamed by `rename` (old -> new).
pub fn encode(world: &State, rename: &[User], buf: &mut Vec<u8>) {
    encode_with(world, &Spent::of(world), rename, &Seqs::of(world), buf);
}

/// [`encode`], with the budgets `spent` and the messages' sequence numbers renumbered by
/// `seqs`.
fn encode_with(world: &State, spent: &Spent, rename: &[User], seqs: &Seqs, buf: &mut Vec<u8>) {
    encode_at(world, spent, rename, seqs, buf, &mut [0; USERS_MAX]);
}

/// [`encode_with`], noting in `ops_at` where each new user's operation count is written
/// (relative to where the encoding starts in `buf`).
fn encode_at(
    world: &State,
    spent: &Spent,
    rename: &[User],
    seqs: &Seqs,
    buf: &mut Vec<u8>,
    ops_at: &mut [usize; USERS_MAX],
) {
    let start = buf.len();
    let n = rename.len();
    let mut by_new = [0 as User; USERS_MAX];
    for (old, &new) in rename.iter().enumerate() {
        by_new[new as usize] = old as User;
    }
    let by_new = &by_new[..n];
    buf.extend([spent.faults, spent.stalls, spent.stall_len]);
    let mut created = [(0u64, 0 as User); USERS_MAX];
    let mut created_len = 0;
    for (u, state) in world.model.users.iter().enumerate() {
        if let Some(account) = &state.account {
            created[created_len] = (account.created, rename[u]);
            created_len += 1;
        }
    }
    let created = &mut created[..created_len];
    created.sort_unstable();
    buf.push(created_len as u8);
    buf.extend(created.iter().map(|&(_, u)| u));
    for (new, &user) in by_new.iter().enumerate() {
        let u = user as usize;
        let model = &world.model.users[u];
        ops_at[new] = buf.len() - start;
        buf.push(spent.ops[u]);
        let command = match model.command {
            Command::Absent => 0,
            Command::LoggedOut => 1,
            Command::LoggedIn => 2 + u8::from(model.asked_ticket),
        };
        let relay = match model.relay {
            None => 0,
            Some(Relay::Bare) => 1,
            Some(Relay::Ticketed) => 2,
        };
        // Whether a ticket was spent matters only to a replay of it, a hostile step.
        buf.extend([
            command,
            relay,
            seqs.sends(world, user),
            u8::from(model.ticket_spent && world.hostile),
        ]);
        match &model.account {
            None => buf.push(0xff),
            Some(account) => {
                buf.push(account.queue.len() as u8);
                for key in &account.queue {
                    buf.extend([rename[key.from as usize], seqs.rank(*key)]);
                }
            }
        }
        buf.push(model.discarded.len() as u8);
        for key in &model.discarded {
            buf.extend([rename[key.from as usize], seqs.rank(*key)]);
        }
        match world.users[u].command {
            None => buf.push(0xff),
            Some(conn) => encode_owed(world, conn, rename, seqs, buf),
        }
        match &world.users[u].relay {
            None => buf.push(0xff),
            Some(relay) => encode_relay(world, relay, rename, by_new, seqs, buf),
        }
        let closing = world.closing.iter().filter(|(owner, _)| *owner == user);
        buf.push(closing.clone().count() as u8);
        for (_, relay) in closing {
            encode_relay(world, relay, rename, by_new, seqs, buf);
        }
        let (account, discarded) = &world.model.durable.accounts[u];
        match account {
            None => buf.push(0xff),
            Some(account) => {
                buf.push(account.queue.len() as u8);
                for key in &account.queue {
                    buf.extend([rename[key.from as usize], seqs.rank(*key)]);
                }
            }
        }
        buf.push(discarded.len() as u8);
    }
    let durable = &world.model.durable;
    let mut created = [(0u64, 0 as User); USERS_MAX];
    let mut created_len = 0;
    for (u, (account, _)) in durable.accounts.iter().enumerate() {
        if let Some(account) = account {
            created[created_len] = (account.created, rename[u]);
            created_len += 1;
        }
    }
    let created = &mut created[..created_len];
    created.sort_unstable();
    buf.extend(created.iter().map(|&(_, u)| u));
    buf.push(u8::from(world.model.stalled));
    buf.push(world.model.pending.len() as u8);
    for effect in &world.model.pending {
        match *effect {
            Effect::Register(u) => buf.extend([0, rename[u as usize]]),
            Effect::Message(u, key) => {
                buf.extend([1, rename[u as usize], rename[key.from as usize], seqs.rank(key)]);
            }
            Effect::Delete(u) => buf.extend([2, rename[u as usize]]),
            Effect::Delivered(u) => buf.extend([3, rename[u as usize]]),
        }
    }
    if world.throttle {
        encode_guesses(world, rename, by_new, buf);
    }
    if world.race {
        // Hijackers' relays the core left open (none, unless it bound one).
        for &user in by_new {
            buf.push(world.hijacks.iter().filter(|h| h.1 == user).count() as u8);
        }
    }
    if world.pipeline > 1 {
        encode_pipelines(world, rename, by_new, buf);
    }
    if world.subsume {
        // How many accounts each name has had. Equal fingerprints stand for equal cores only
        // as far as the core agrees with the model; a faulty core may keep what a deleted
        // account left (a name `list` still shows). With subsumption, a state with a deleted
        // account would otherwise be skipped for one that never had it and spent less.
        for &user in by_new {
            let generation = world.model.users[user as usize].generation;
            buf.push(u8::try_from(generation).unwrap_or(u8::MAX));
        }
    }
}

/// What pipelining clients sent that the server has not read yet: per user, the requests sent
/// and not answered, the replies the model holds back, and the requests it defers, in order;
/// then the order in which the sync releases the users whose replies are held, which is the
/// order their deferred requests are served in (so the order in which their messages queue).
/// A deferred `send` and a deferred `list` leave every other field alike, and the replies owed
/// come only once they are served. Only with pipelining (without it nothing is deferred and
/// the release order serves nothing), so that other scenarios' encodings are unchanged.
fn encode_pipelines(world: &State, rename: &[User], by_new: &[User], buf: &mut Vec<u8>) {
    for &user in by_new {
        let model = &world.model.users[user as usize];
        buf.extend([world.users[user as usize].outstanding, model.unanswered]);
        buf.push(model.deferred.len() as u8);
        for &op in &model.deferred {
            let (tag, other) = match op {
                Op::Register => (0, 0),
                Op::Login => (1, 0),
                Op::Logout => (2, 0),
                Op::List => (3, 0),
                Op::Delete => (4, 0),
                Op::Relay => (5, 0),
                Op::TicketRelay => (6, 0),
                Op::Send { to } => (7, rename[to as usize]),
                Op::RelayAs { target } => (8, rename[target as usize]),
                Op::ReplayTicket { target } => (9, rename[target as usize]),
                Op::ForgeAck { target } => (10, rename[target as usize]),
            };
            buf.extend([tag, other]);
        }
    }
    buf.push(world.model.held.len() as u8);
    buf.extend(world.model.held.iter().map(|&user| rename[user as usize]));
}

/// The attackers' guesses (only with the throttle option, so that other scenarios' encodings
/// are unchanged): per attacker, the checks that ran per name and the pending guesses' names
/// in order. The core's throttle state follows from them (attackers have addresses of their
/// own, and time never passes).
fn encode_guesses(world: &State, rename: &[User], by_new: &[User], buf: &mut Vec<u8>) {
    for &user in by_new {
        let row = &world.guessed[user as usize];
        buf.extend(by_new.iter().map(|&target| row[target as usize]));
        let pending = world.guesses.iter().filter(|g| g.user == user && g.job.is_some());
        buf.push(pending.clone().count() as u8);
        buf.extend(pending.map(|g| rename[g.target as usize]));
    }
}

/// A relay: what it holds unreported, what it is owed, the latest message of each sender.
fn encode_relay(
    world: &State,
    relay: &RelayConn,
    rename: &[User],
    by_new: &[User],
    seqs: &Seqs,
    buf: &mut Vec<u8>,
) {
    buf.push(relay.unreported.len() as u8);
    for &sender in by_new {
        let latest = latest_received(relay, sender);
        buf.push(latest.map_or(0xff, |seq| seqs.rank(MsgKey { from: sender, seq })));
    }
    encode_owed(world, relay.conn, rename, seqs, buf);
}

/// The latest message from `sender` that `relay` received (what the encoding keeps of them).
fn latest_received(relay: &RelayConn, sender: User) -> Option<u32> {
    relay.received.iter().filter(|k| k.from == sender).map(|k| k.seq).max()
}

/// What `conn` is owed, in order, with user names renamed and pushes' messages renumbered.
fn encode_owed(world: &State, conn: ConnId, rename: &[User], seqs: &Seqs, buf: &mut Vec<u8>) {
    for (_, seen) in world.owed.iter().filter(|(c, _)| *c == conn) {
        match seen {
            Seen::Closed => buf.push(1),
            Seen::Frame(text) if pushed(text).is_some() => {
                let (ticketed, key) = pushed(text).expect("checked");
                buf.extend([3, u8::from(ticketed), rename[key.from as usize], seqs.rank(key)]);
            }
            Seen::Frame(text) => {
                buf.push(2);
                encode_renamed_text(text.as_bytes(), rename, buf);
                buf.push(0);
            }
        }
    }
    buf.push(0xff);
}

/// The message a predicted push carries (as the reference model writes it: `0\nFROM:TEXT` on a
/// bare relay, `7\n#\nFROM\nTEXT` on a ticketed one), and whether it is ticketed.
fn pushed(text: &str) -> Option<(bool, MsgKey)> {
    let (ticketed, rest) = match text.strip_prefix("0\n") {
        Some(rest) => (false, rest.split_once(':')?),
        None => (true, text.strip_prefix("7\n#\n")?.split_once('\n')?),
    };
    let from = user_of_name(rest.0)?;
    let seq = message_seq(rest.1)?;
    Some((ticketed, MsgKey { from, seq }))
}

/// The sequence numbers of each sender's messages that the encoding mentions, renumbered in
/// order (the first mentioned 0, ...). A sender's messages are numbered in the order sent, and
/// the core and the model only ever compare two numbers (a relay must receive a sender's
/// messages in order, each once), so states whose numbers differ but compare alike behave
/// alike: a message sent to nobody (an unknown recipient) or delivered and forgotten no longer
/// tells them apart. The next message's number is above every one mentioned, so the send
/// counter is written as the count mentioned.
#[derive(Default)]
struct Seqs {
    /// Per sender (by old name), bit `s` set if sequence number `s` is mentioned.
    mentioned: [u64; USERS_MAX],
    /// Some number was too large for the bitmaps: numbers are written as they are.
    exact: bool,
}

impl Seqs {
    fn of(world: &State) -> Seqs {
        let mut seqs = Seqs { mentioned: [0; USERS_MAX], exact: false };
        let mut mention = |key: MsgKey| match 1u64.checked_shl(key.seq) {
            Some(bit) => seqs.mentioned[key.from as usize] |= bit,
            None => seqs.exact = true,
        };
        let model = &world.model;
        for user in &model.users {
            user.account.iter().flat_map(|a| &a.queue).copied().for_each(&mut mention);
            user.discarded.iter().copied().for_each(&mut mention);
        }
        for (account, discarded) in &model.durable.accounts {
            account.iter().flat_map(|a| &a.queue).copied().for_each(&mut mention);
            discarded.iter().copied().for_each(&mut mention);
        }
        for effect in &model.pending {
            if let Effect::Message(_, key) = *effect {
                mention(key);
            }
        }
        let relays = world.users.iter().filter_map(|c| c.relay.as_ref());
        for relay in relays.chain(world.closing.iter().map(|(_, r)| r)) {
            for from in 0..world.users.len() as User {
                if let Some(seq) = latest_received(relay, from) {
                    mention(MsgKey { from, seq });
                }
            }
        }
        for (_, seen) in &world.owed {
            if let Seen::Frame(text) = seen {
                if let Some((_, key)) = pushed(text) {
                    mention(key);
                }
            }
        }
        seqs
    }

    /// `key`'s number among its sender's mentioned ones.
    fn rank(&self, key: MsgKey) -> u8 {
        if self.exact {
            return key.seq as u8;
        }
        let below = (1u64 << key.seq) - 1;
        (self.mentioned[key.from as usize] & below).count_ones() as u8
    }

    /// `user`'s send counter, as written.
    fn sends(&self, world: &State, user: User) -> u8 {
        if self.exact {
            return world.model.users[user as usize].sends as u8;
        }
        self.mentioned[user as usize].count_ones() as u8
    }
}

/// `text` with every user name (`u` and a digit) renamed; no other text has `u` before a digit.
fn encode_renamed_text(text: &[u8], rename: &[User], buf: &mut Vec<u8>) {
    let mut prev = 0u8;
    for &byte in text {
        let user = byte.wrapping_sub(b'0') as usize;
        if prev == b'u' && byte.is_ascii_digit() && user < rename.len() {
            buf.push(b'0' + rename[user]);
        } else {
            buf.push(byte);
        }
        prev = byte;
    }
}

/// A fast, deterministic 128-bit hash (two 64-bit multiply-rotate lanes, finalised with the
/// murmur3 mixer). Not cryptographic; only states are hashed, not adversarial input.
pub fn hash128(bytes: &[u8]) -> u128 {
    const K1: u64 = 0x9e37_79b9_7f4a_7c15;
    const K2: u64 = 0xc2b2_ae3d_27d4_eb4f;
    let (mut a, mut b) = (0x243f_6a88_85a3_08d3_u64, 0x1319_8a2e_0370_7344_u64);
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        a = (a ^ word).wrapping_mul(K1).rotate_left(31);
        b = (b ^ word.rotate_left(17)).wrapping_mul(K2).rotate_left(29);
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    let word = u64::from_le_bytes(tail) ^ ((bytes.len() as u64) << 56);
    a = fmix64((a ^ word).wrapping_mul(K1));
    b = fmix64((b ^ word.rotate_left(17)).wrapping_mul(K2) ^ a);
    (u128::from(a) << 64) | u128::from(b)
}

fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutations_are_all_distinct_and_complete() {
        let perms = permutations(3);
        assert_eq!(perms.len(), 6);
        assert_eq!(perms[0], vec![0, 1, 2]);
        let mut unique = perms.clone();
        unique.dedup();
        assert_eq!(unique.len(), 6);
    }

    #[test]
    fn hash_separates_lengths_and_contents() {
        assert_ne!(hash128(b""), hash128(b"\0"));
        assert_ne!(hash128(b"abcdefgh"), hash128(b"abcdefgi"));
        assert_ne!(hash128(b"abcdefgh1"), hash128(b"abcdefgh2"));
        assert_eq!(hash128(b"same"), hash128(b"same"));
    }
}
