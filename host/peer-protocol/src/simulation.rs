//! An in-process simulation of the genesis pushing its peer list, both ways: 0.12's full list
//! to every peer on every change, and [`crate::peerlist`]'s versioned changes.
//!
//! No sockets. One genesis ([`PeerList`]) and N simulated peers ([`LocalList`]) run the real
//! code: every message is made with [`PeerList::update_for`] and [`ListUpdate::to_request`],
//! serialised to the JSON text that would go on the wire (its length is what is counted), parsed
//! back with [`ListUpdate::from_request`] and applied with [`LocalList::apply`] by each
//! recipient. A message that several peers receive identically (the same full list, the same
//! changes from the same version) is serialised and parsed once, as a genesis would, and its
//! bytes counted for every recipient.
//!
//! **Churn.** The network starts with `peers` registered peers that hold the current list (not
//! counted). Then `changes` list changes happen, drawn with a seeded xorshift generator from
//! joins (a new peer registers), leaves (a random peer is removed: deregistration or liveness
//! timeout) and schema changes (a random peer pings with a new schema hash), in bursts of
//! `burst` changes that happen at the same instant. After each change the genesis sends one
//! message to every peer then in its list (a new peer included, a removed one not): the full
//! list without a version (exactly 0.12's request) in the first way; `update_for(the version
//! last sent to that peer)` in the second (a new peer gets a full list with its version). With
//! `coalesce`, the genesis sends once per peer per burst, after all of its changes (what
//! `genesis.rs` does: one push in flight per peer, then whatever changed meanwhile).
//!
//! **Delivery model** (deterministic; the time reported is modelled, not measured). Each
//! message costs `http_overhead_bytes` (request line and standard headers) plus its headers
//! (`Name: value\r\n`) plus its JSON body. The genesis's uplink is the bottleneck: its messages
//! leave one after another at `genesis_bandwidth_bytes_per_s` (concurrent connections share the
//! same link, so the last one ends no sooner); each arrives `latency_ms` after it has left
//! (propagation plus request handling). Peers' own links are not limiting (a peer receives one
//! message per change). Messages to one peer arrive in the order they were sent. The time for a
//! burst is from the instant of its changes until the last of its messages arrives; after it the
//! simulation checks that every peer's list agrees with the genesis's. Bursts are far enough
//! apart not to overlap. The wall time of the real work (genesis, serialising, parsing,
//! applying; one thread, this machine) is measured too and reported separately.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::{Duration, Instant};

use crate::peerlist::{ListUpdate, LocalList, Peer, PeerList, UNKNOWN_VERSION};
use uuid::Uuid;

/// The modelled link (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Link {
    /// Per message, from leaving the genesis to being applied: propagation and handling.
    pub latency_ms: f64,
    /// The genesis's uplink, bytes per second, shared by all its messages.
    pub genesis_bandwidth_bytes_per_s: f64,
    /// Bytes every HTTP request costs besides its body and the peer-list headers.
    pub http_overhead_bytes: usize,
}

impl Default for Link {
    /// 20 ms per message, 100 Mbit/s uplink, 200 bytes of HTTP overhead.
    fn default() -> Self {
        Link {
            latency_ms: 20.0,
            genesis_bandwidth_bytes_per_s: 12.5e6,
            http_overhead_bytes: 200,
        }
    }
}

/// What to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Peers registered at the start.
    pub peers: usize,
    /// List changes to make (each a join, a leave or a schema change).
    pub changes: usize,
    /// Changes that happen at the same instant.
    pub burst: usize,
    /// Relative weights of joins, leaves and schema changes.
    pub mix: [u32; 3],
    /// Send once per peer per burst, after all its changes (as the genesis does: one push in
    /// flight per peer, then what changed meanwhile), rather than once per peer per change.
    pub coalesce: bool,
    /// The random generator's seed.
    pub seed: u64,
    /// The modelled link.
    pub link: Link,
    /// Between a peer's pings (for the ping load line of the report).
    pub ping_interval_s: f64,
}

impl Default for Params {
    /// 1,000 peers, 200 changes in bursts of 10, as many joins as leaves and schema changes, one
    /// message per peer per change.
    fn default() -> Self {
        Params {
            peers: 1000,
            changes: 200,
            burst: 10,
            mix: [1, 1, 1],
            coalesce: false,
            seed: 1,
            link: Link::default(),
            ping_interval_s: 10.0,
        }
    }
}

/// The figures of one way of sending the list.
#[derive(Debug, Clone, PartialEq)]
pub struct WayReport {
    /// Its name.
    pub name: &'static str,
    /// Messages sent for the changes.
    pub messages: u64,
    /// Bytes sent for the changes (overhead, headers and bodies).
    pub bytes: u64,
    /// Body bytes alone.
    pub body_bytes: u64,
    /// Changes that were refused by a peer ([`crate::peerlist::NeedFull`]) and sent again.
    pub resent: u64,
    /// Modelled time from a burst until every list agrees, mean over bursts.
    pub agree_mean: Duration,
    /// The same, the longest burst.
    pub agree_max: Duration,
    /// Whether every peer's list agreed with the genesis's after every burst.
    pub converged: bool,
    /// Wall time of the real work (genesis, serialising, parsing, applying), one thread.
    pub wall: Duration,
}

/// What a simulation found, both ways. `Display` prints a small table.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// What was simulated.
    pub params: Params,
    /// Joins, leaves and schema changes made.
    pub joins: usize,
    /// See `joins`.
    pub leaves: usize,
    /// See `joins`.
    pub schema_changes: usize,
    /// Peers at the end.
    pub final_peers: usize,
    /// Bytes of one ping (`POST /peers/{id}/ping` with `{"schemaHash"}`), overhead included.
    pub ping_bytes: usize,
    /// 0.12: the full list to every peer on every change.
    pub full: WayReport,
    /// Versioned: only the changes, to peers that hold a version.
    pub versioned: WayReport,
}

impl WayReport {
    fn per_change(&self, n: usize, x: u64) -> f64 {
        x as f64 / n.max(1) as f64
    }
}

fn human_bytes(b: f64) -> String {
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.2} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{b:.0} B")
    }
}

fn ms(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 10.0 {
        format!("{s:.1} s")
    } else {
        format!("{:.1} ms", s * 1e3)
    }
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.1}×", a / b)
    } else {
        "–".to_string()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.params;
        let n = p.changes;
        let (a, b) = (&self.full, &self.versioned);
        writeln!(
            f,
            "peer list simulation: {} peers at the start, {} at the end; {} changes ({} joins, {} leaves, {} schema changes) in bursts of {}; seed {}",
            p.peers, self.final_peers, n, self.joins, self.leaves, self.schema_changes, p.burst, p.seed
        )?;
        writeln!(
            f,
            "the genesis sends every peer one message per {}",
            if p.coalesce {
                "burst (coalesced)"
            } else {
                "change"
            }
        )?;
        writeln!(
            f,
            "modelled link: genesis uplink {:.0} Mbit/s shared by its messages, {} ms per message, {} bytes of HTTP overhead per message",
            p.link.genesis_bandwidth_bytes_per_s * 8.0 / 1e6,
            p.link.latency_ms,
            p.link.http_overhead_bytes
        )?;
        writeln!(
            f,
            "{:<40} {:>20} {:>20} {:>8}",
            "", "0.12 full lists", "versioned changes", "ratio"
        )?;
        let row = |f: &mut fmt::Formatter<'_>, name: &str, x: String, y: String, r: String| {
            writeln!(f, "{name:<40} {x:>20} {y:>20} {r:>8}")
        };
        let mpc = |w: &WayReport| w.per_change(n, w.messages);
        row(
            f,
            "messages per change",
            format!("{:.1}", mpc(a)),
            format!("{:.1}", mpc(b)),
            ratio(mpc(a), mpc(b)),
        )?;
        let bpc = |w: &WayReport| w.per_change(n, w.bytes);
        row(
            f,
            "bytes per change (mean)",
            human_bytes(bpc(a)),
            human_bytes(bpc(b)),
            ratio(bpc(a), bpc(b)),
        )?;
        let bpm = |w: &WayReport| w.bytes as f64 / w.messages.max(1) as f64;
        row(
            f,
            "bytes per message (mean)",
            human_bytes(bpm(a)),
            human_bytes(bpm(b)),
            ratio(bpm(a), bpm(b)),
        )?;
        row(
            f,
            "bytes in all (of which bodies)",
            format!(
                "{} ({})",
                human_bytes(a.bytes as f64),
                human_bytes(a.body_bytes as f64)
            ),
            format!(
                "{} ({})",
                human_bytes(b.bytes as f64),
                human_bytes(b.body_bytes as f64)
            ),
            ratio(a.bytes as f64, b.bytes as f64),
        )?;
        row(
            f,
            "modelled time to agree, mean per burst",
            ms(a.agree_mean),
            ms(b.agree_mean),
            ratio(a.agree_mean.as_secs_f64(), b.agree_mean.as_secs_f64()),
        )?;
        row(
            f,
            "modelled time to agree, longest burst",
            ms(a.agree_max),
            ms(b.agree_max),
            ratio(a.agree_max.as_secs_f64(), b.agree_max.as_secs_f64()),
        )?;
        row(
            f,
            "measured wall time of the real work",
            ms(a.wall),
            ms(b.wall),
            ratio(a.wall.as_secs_f64(), b.wall.as_secs_f64()),
        )?;
        row(
            f,
            "every list agreed after every burst",
            a.converged.to_string(),
            b.converged.to_string(),
            String::new(),
        )?;
        if a.resent + b.resent > 0 {
            row(
                f,
                "changes refused and sent again",
                a.resent.to_string(),
                b.resent.to_string(),
                String::new(),
            )?;
        }
        let pings = p.peers as f64 / p.ping_interval_s;
        write!(
            f,
            "pings at the genesis, either way: {:.0}/s at a {} s interval, {} each, {}/s",
            pings,
            p.ping_interval_s,
            human_bytes(self.ping_bytes as f64),
            human_bytes(pings * self.ping_bytes as f64)
        )
    }
}

/// A tiny xorshift64* generator: deterministic, no dependency.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// Seeded (0 is replaced: xorshift must not start at 0).
    pub fn new(seed: u64) -> Self {
        XorShift((seed ^ 0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform below `n` (> 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    fn uuid(&mut self) -> Uuid {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        b[8..].copy_from_slice(&self.next_u64().to_le_bytes());
        uuid::Builder::from_random_bytes(b).into_uuid()
    }

    fn hash(&mut self) -> String {
        format!("{:016x}{:016x}", self.next_u64(), self.next_u64())
    }
}

/// One churn event.
#[derive(Debug, Clone)]
enum Event {
    Join(Peer),
    Leave(Uuid),
    Schema(Uuid, String),
}

/// The initial peers and the events, drawn once so both ways see the same churn.
struct Scenario {
    initial: Vec<Peer>,
    events: Vec<Event>,
    joins: usize,
    leaves: usize,
    schema_changes: usize,
}

fn new_peer(rng: &mut XorShift, n: usize) -> Peer {
    Peer {
        id: rng.uuid(),
        name: format!("peer-{n:06}"),
        uri: format!(
            "http://10.{}.{}.{}:8080",
            (n >> 16) & 255,
            (n >> 8) & 255,
            n & 255
        ),
        schema_hash: rng.hash(),
        identity: None,
        last_contact_ms: 0,
    }
}

fn scenario(p: &Params) -> Scenario {
    let mut rng = XorShift::new(p.seed);
    let mut made = 0;
    let initial: Vec<Peer> = (0..p.peers)
        .map(|_| {
            made += 1;
            new_peer(&mut rng, made)
        })
        .collect();
    let mut present: Vec<Uuid> = initial.iter().map(|p| p.id).collect();
    let total: u64 = p.mix.iter().map(|&w| w as u64).sum::<u64>().max(1);
    let (mut joins, mut leaves, mut schema_changes) = (0, 0, 0);
    let mut events = Vec::with_capacity(p.changes);
    for _ in 0..p.changes {
        let r = rng.below(total);
        let kind = if r < p.mix[0] as u64 {
            0
        } else if r < (p.mix[0] + p.mix[1]) as u64 {
            1
        } else {
            2
        };
        if kind == 0 || present.is_empty() {
            made += 1;
            let peer = new_peer(&mut rng, made);
            present.push(peer.id);
            events.push(Event::Join(peer));
            joins += 1;
        } else if kind == 1 {
            let i = rng.below(present.len() as u64) as usize;
            events.push(Event::Leave(present.swap_remove(i)));
            leaves += 1;
        } else {
            let i = rng.below(present.len() as u64) as usize;
            events.push(Event::Schema(present[i], rng.hash()));
            schema_changes += 1;
        }
    }
    Scenario {
        initial,
        events,
        joins,
        leaves,
        schema_changes,
    }
}

/// A message ready to send: its size on the wire and what the receiver parses from it.
struct Wire {
    bytes: u64,
    body_bytes: u64,
    parsed: ListUpdate,
}

/// Serialises `u` as it goes on the wire and parses it back as a peer would.
fn wire(u: &ListUpdate, link: &Link) -> Wire {
    let (headers, body) = u.to_request();
    let text = serde_json::to_string(&body).unwrap_or_default();
    let header_bytes: usize = headers.iter().map(|(n, v)| n.len() + 2 + v.len() + 2).sum();
    let received: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let parsed = ListUpdate::from_request(
        |name| {
            headers
                .iter()
                .find(|(h, _)| h.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        },
        &received,
    )
    .unwrap_or(ListUpdate::Full {
        version: UNKNOWN_VERSION,
        peers: vec![],
    });
    Wire {
        bytes: (link.http_overhead_bytes + header_bytes + text.len()) as u64,
        body_bytes: text.len() as u64,
        parsed,
    }
}

/// A simulated peer: its list and the version the genesis last sent it.
struct SimPeer {
    local: LocalList,
    sent: Option<u64>,
}

/// The modelled time of a burst, in seconds from its instant.
#[derive(Default)]
struct Clock {
    /// When the genesis's uplink is next free.
    uplink: f64,
    /// When the last message arrived.
    last_arrival: f64,
}

/// The genesis sends one message to every peer in its list, each applied by its peer.
fn send_to_all(
    genesis: &PeerList,
    peers: &mut BTreeMap<Uuid, SimPeer>,
    versioned: bool,
    link: &Link,
    clock: &mut Clock,
    report: &mut WayReport,
) {
    let mut deliver = |w: &Wire, sim: &mut SimPeer, report: &mut WayReport| {
        report.messages += 1;
        report.bytes += w.bytes;
        report.body_bytes += w.body_bytes;
        clock.uplink += w.bytes as f64 / link.genesis_bandwidth_bytes_per_s;
        clock.last_arrival = clock.last_arrival.max(clock.uplink + link.latency_ms / 1e3);
        sim.sent = w.parsed.version();
        sim.local.apply(w.parsed.clone())
    };
    // Identical messages (same full list, same changes from the same version) made once.
    let mut made: HashMap<Option<u64>, Wire> = HashMap::new();
    for sim in peers.values_mut() {
        let key = if versioned { sim.sent } else { None };
        let w = made.entry(key).or_insert_with(|| {
            let u = if versioned {
                genesis.update_for(key)
            } else {
                ListUpdate::Full {
                    version: UNKNOWN_VERSION,
                    peers: genesis.peers(),
                }
            };
            wire(&u, link)
        });
        if deliver(w, sim, report).is_err() {
            // The peer reports the version it holds and gets what fits it.
            report.resent += 1;
            let again = wire(&genesis.update_for(sim.local.version()), link);
            if deliver(&again, sim, report).is_err() {
                report.converged = false;
            }
        }
    }
}

fn run_way(p: &Params, sc: &Scenario, versioned: bool) -> (WayReport, usize) {
    let started = Instant::now();
    let link = &p.link;
    let mut genesis = PeerList::starting_at(1, 4096);
    let mut peers: BTreeMap<Uuid, SimPeer> = BTreeMap::new();
    for peer in &sc.initial {
        genesis.upsert(peer.clone());
    }
    // The start: everybody holds the current list (not counted).
    let start = wire(&genesis.update_for(None), link);
    for peer in &sc.initial {
        let mut local = LocalList::new();
        let mut u = start.parsed.clone();
        if !versioned {
            if let ListUpdate::Full { version, .. } = &mut u {
                *version = UNKNOWN_VERSION;
            }
        }
        let sent = u.version();
        let _ = local.apply(u);
        peers.insert(peer.id, SimPeer { local, sent });
    }

    let mut report = WayReport {
        name: if versioned {
            "versioned changes"
        } else {
            "0.12 full lists"
        },
        messages: 0,
        bytes: 0,
        body_bytes: 0,
        resent: 0,
        agree_mean: Duration::ZERO,
        agree_max: Duration::ZERO,
        converged: true,
        wall: Duration::ZERO,
    };
    let mut agree_sum = 0.0;
    let mut bursts = 0u32;
    for burst in sc.events.chunks(p.burst.max(1)) {
        let mut clock = Clock::default();
        for event in burst {
            match event {
                Event::Join(peer) => {
                    genesis.upsert(peer.clone());
                    peers.insert(
                        peer.id,
                        SimPeer {
                            local: LocalList::new(),
                            sent: None,
                        },
                    );
                }
                Event::Leave(id) => {
                    genesis.remove(*id);
                    peers.remove(id);
                }
                Event::Schema(id, hash) => {
                    genesis.touch(*id, 0, hash);
                }
            }
            if !p.coalesce {
                send_to_all(
                    &genesis,
                    &mut peers,
                    versioned,
                    link,
                    &mut clock,
                    &mut report,
                );
            }
        }
        if p.coalesce {
            send_to_all(
                &genesis,
                &mut peers,
                versioned,
                link,
                &mut clock,
                &mut report,
            );
        }
        if !peers.values().all(|s| s.local.agrees_with(&genesis)) {
            report.converged = false;
        }
        bursts += 1;
        agree_sum += clock.last_arrival;
        report.agree_max = report
            .agree_max
            .max(Duration::from_secs_f64(clock.last_arrival));
    }
    if bursts > 0 {
        report.agree_mean = Duration::from_secs_f64(agree_sum / bursts as f64);
    }
    report.wall = started.elapsed();
    (report, genesis.len())
}

/// Runs the simulation both ways over the same churn.
pub fn simulate(params: Params) -> Report {
    let sc = scenario(&params);
    let (full, final_peers) = run_way(&params, &sc, false);
    let (versioned, _) = run_way(&params, &sc, true);
    let ping_body = serde_json::json!({ "schemaHash": "0".repeat(32) }).to_string();
    Report {
        ping_bytes: params.link.http_overhead_bytes + ping_body.len(),
        joins: sc.joins,
        leaves: sc.leaves,
        schema_changes: sc.schema_changes,
        final_peers,
        full,
        versioned,
        params,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_ways_converge_and_changes_send_fewer_bytes() {
        let r = simulate(Params {
            peers: 50,
            changes: 100,
            burst: 5,
            ..Params::default()
        });
        println!("{r}");
        assert!(r.full.converged, "{r}");
        assert!(r.versioned.converged, "{r}");
        assert_eq!(r.joins + r.leaves + r.schema_changes, 100);
        assert!(r.joins > 0 && r.leaves > 0 && r.schema_changes > 0);
        // One message per peer in the list per change, both ways, nothing refused.
        assert_eq!(r.full.messages, r.versioned.messages);
        assert_eq!(r.versioned.resent, 0);
        assert!(
            r.versioned.bytes * 5 < r.full.bytes,
            "versioned {} full {}",
            r.versioned.bytes,
            r.full.bytes
        );
        assert!(r.versioned.agree_max <= r.full.agree_max);
        assert!(r.full.agree_mean > Duration::ZERO);
        let table = r.to_string();
        assert!(table.contains("bytes per change"), "{table}");
        assert!(table.contains("ratio"), "{table}");
    }

    #[test]
    fn coalesced_bursts_send_one_message_per_peer_per_burst() {
        let p = Params {
            peers: 40,
            changes: 60,
            burst: 6,
            mix: [1, 1, 1],
            ..Params::default()
        };
        let each = simulate(p.clone());
        let once = simulate(Params {
            coalesce: true,
            ..p
        });
        assert!(once.full.converged && once.versioned.converged, "{once}");
        assert_eq!(once.full.messages, once.versioned.messages);
        assert!(
            once.full.messages * 4 < each.full.messages,
            "{once}\n{each}"
        );
        assert!(once.versioned.bytes < each.versioned.bytes);
        assert!(once.versioned.bytes * 5 < once.full.bytes, "{once}");
        assert!(once.to_string().contains("per burst"));
    }

    #[test]
    fn deterministic() {
        let p = Params {
            peers: 20,
            changes: 30,
            burst: 3,
            seed: 7,
            ..Params::default()
        };
        let (a, b) = (simulate(p.clone()), simulate(p));
        assert_eq!(a.full.bytes, b.full.bytes);
        assert_eq!(a.versioned.bytes, b.versioned.bytes);
        assert_eq!(a.versioned.agree_max, b.versioned.agree_max);
        assert_eq!(a.final_peers, b.final_peers);
    }

    #[test]
    fn only_leaves_down_to_nobody_and_joins_from_nobody() {
        let r = simulate(Params {
            peers: 3,
            changes: 10,
            burst: 2,
            mix: [0, 1, 0],
            ..Params::default()
        });
        // Leaves while there is somebody, a join when there is nobody: L L L J L J L J L J.
        assert_eq!((r.leaves, r.joins), (6, 4));
        assert_eq!(r.final_peers, 1);
        assert!(r.full.converged && r.versioned.converged, "{r}");
    }

    #[test]
    fn xorshift_is_seeded() {
        let mut a = XorShift::new(1);
        let mut b = XorShift::new(1);
        let mut c = XorShift::new(2);
        let xs: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        assert_eq!(xs, (0..4).map(|_| b.next_u64()).collect::<Vec<_>>());
        assert_ne!(xs, (0..4).map(|_| c.next_u64()).collect::<Vec<_>>());
        assert!((0..1000).all(|_| a.below(7) < 7));
    }
}
