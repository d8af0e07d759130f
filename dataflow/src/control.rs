//! The run's control stream: a small second dataflow beside the job's, over which the
//! workers of a run — in one process or several (timely's cluster mode) — agree at the
//! run's barriers and carry the checkpoint protocol between processes.
//!
//! ```text
//! follower process: Coordinator ──reports──▶ control stream ──▶ worker 0 ──▶ leader's Coordinator
//! leader (process 0): Coordinator ──decision──▶ control stream ──▶ each process's first worker
//! every worker: sync(round, ok) ──flag to every worker──▶ waits until the stream's frontier passes the round
//! ```
//!
//! **Barriers are progress.** `sync` sends this worker's flag to every worker within
//! the current round, advances the input to the next round's time and steps until the
//! probe's frontier reaches it: timely's progress tracking guarantees then that
//! every worker has advanced past it too and that every message sent at the round has
//! been delivered. So a `sync` is a barrier over all the run's workers, wherever they
//! run, and an all-reduce of their flags (a run commits only if no worker failed).
//!
//! Reports and decisions are sent as they arise, and the input's time then advances
//! within the round (its low 32 bits; the round is above them), which is what makes
//! timely hand them over at once; a report sent before a `sync` is applied by the
//! leader before that `sync` returns anywhere. Messages are JSON text (the positions
//! inside are JSON values).

use crate::checkpoint::{Coordinator, Decision, Report, Role};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;
use timely::dataflow::operators::{Exchange, Input, Inspect, Probe};
use timely::dataflow::{InputHandleVec, ProbeHandle};
use timely::worker::Worker;

/// One control message.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
enum Message {
    /// A follower's report, for worker 0.
    Report(Report),
    /// The leader's decision, for each process's first worker.
    Decision(Decision),
    /// A worker's flag at a `sync` round.
    Flag { round: u64, ok: bool },
}

/// A worker's end of the control stream.
pub(crate) struct Control {
    input: InputHandleVec<u64, (u64, String)>,
    probe: ProbeHandle<u64>,
    inbox: Rc<RefCell<Vec<String>>>,
    round: u64,
    index: usize,
    peers: usize,
    /// Worker threads per process: the first worker of process `p` is `p * threads`.
    threads: usize,
    /// The last decision sent (leader) or applied (followers).
    decided: Decision,
    /// Flags received, by round.
    flags: std::collections::BTreeMap<u64, (usize, bool)>,
    /// Something was sent since the input's time last advanced.
    pending: bool,
    /// The input's time within the round (the low 32 bits; the round is above them).
    tick: u64,
}

impl Control {
    /// Builds the control dataflow in `worker` (every worker, in the same order as the
    /// job's dataflow, so both are built alike everywhere).
    pub(crate) fn new(worker: &mut Worker, threads: usize) -> Control {
        let inbox: Rc<RefCell<Vec<String>>> = Rc::default();
        let into = inbox.clone();
        let (input, probe) = worker.dataflow_named::<u64, _, _>("Control", |scope| {
            let (input, stream) = scope.new_input::<Vec<(u64, String)>>();
            let (probe, _) = stream
                .exchange(|(to, _)| *to)
                .inspect(move |(_, text)| into.borrow_mut().push(text.clone()))
                .probe();
            (input, probe)
        });
        Control {
            input,
            probe,
            inbox,
            round: 0,
            index: worker.index(),
            peers: worker.peers(),
            threads: threads.max(1),
            decided: Decision::default(),
            flags: Default::default(),
            pending: false,
            tick: 0,
        }
    }

    fn send(&mut self, to: usize, message: &Message) {
        match serde_json::to_string(message) {
            Ok(text) => {
                self.input.send((to as u64, text));
                self.pending = true;
            }
            // Our own types always encode.
            Err(e) => tracing::error!("internal error: cannot encode a control message: {e}"),
        }
    }

    /// Moves what is due: a follower's reports to worker 0, the leader's new decision to
    /// every other process; applies what arrived. Call between steps.
    pub(crate) fn pump(&mut self, ckpt: Option<&Coordinator>) {
        if let Some(c) = ckpt {
            match c.role() {
                Role::Alone => {}
                Role::Follower { .. } => {
                    for report in c.take_outbox() {
                        self.send(0, &Message::Report(report));
                    }
                }
                Role::Leader { processes } => {
                    if self.index == 0 {
                        let now = c.decision();
                        if now != self.decided {
                            for p in 1..processes {
                                self.send(p * self.threads, &Message::Decision(now.clone()));
                            }
                            self.decided = now;
                        }
                    }
                }
            }
        }
        // What is sent waits in the input's and the exchange's buffers until the
        // input's time advances: advance it within the round (reports and decisions
        // must not wait for the next `sync`).
        if self.pending {
            if self.tick < u64::from(u32::MAX) {
                self.tick += 1;
                self.input.advance_to((self.round << 32) | self.tick);
            } else {
                // (Four billion hand-overs in one round: what follows waits for the
                // next `sync`, which still delivers it.)
                self.input.flush();
            }
            self.pending = false;
        }
        let arrived = std::mem::take(&mut *self.inbox.borrow_mut());
        for text in arrived {
            match serde_json::from_str::<Message>(&text) {
                Ok(Message::Report(r)) => {
                    if let Some(c) = ckpt {
                        c.apply(r);
                    }
                }
                Ok(Message::Decision(d)) => {
                    if let Some(c) = ckpt {
                        c.apply_decision(&d);
                    }
                    self.decided = d;
                }
                Ok(Message::Flag { round, ok }) => {
                    let entry = self.flags.entry(round).or_insert((0, true));
                    entry.0 += 1;
                    entry.1 &= ok;
                }
                Err(e) => tracing::error!("internal error: unreadable control message: {e}"),
            }
        }
    }

    /// A barrier over every worker of the run (in every process): returns once all have
    /// reached it, with whether every one of them said `ok`.
    pub(crate) fn sync(
        &mut self,
        worker: &mut Worker,
        ckpt: Option<&Coordinator>,
        ok: bool,
    ) -> bool {
        let round = self.round;
        for to in 0..self.peers {
            self.send(to, &Message::Flag { round, ok });
        }
        self.pump(ckpt);
        // Every worker sends its flag below the next round's time and only then
        // advances to it: once the frontier reaches it, every flag has arrived.
        self.round += 1;
        self.tick = 0;
        let next = self.round << 32;
        self.input.advance_to(next);
        while self.probe.less_than(&next) {
            worker.step_or_park(Some(Duration::from_millis(1)));
            self.pump(ckpt);
        }
        self.pump(ckpt);
        let (count, all) = self.flags.remove(&round).unwrap_or((0, false));
        // Every flag of the round has arrived once the frontier passed it.
        all && count == self.peers
    }
}
