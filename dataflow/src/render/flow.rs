//! Flow control between a source and the stateful operators it feeds: on the data
//! path, the feedback edge from a stateful operator's input (after the exchange) back
//! to the source operator that feeds it.
//!
//! Timely channels are unbounded: a source that reads faster than another worker's
//! stateful operator consumes queues rows between the workers without limit (Nexmark
//! q7 at 2 workers grew from 293 to 796 MiB between 2M and 8M events, flat at one
//! worker). So each stateful operator whose input comes from exactly one source
//! through stateless stages only (`Calc`, window assignment) reports that input's
//! frontier — a global one: the least time of any row still queued for the operator on
//! any worker, or still to be sent by the source on any worker — to the source on its
//! own worker ([`SourceFlow`]), and the source does not read while its capability is
//! more than [`FLOW_LAG`] ahead of what its consumers have taken in ([`pause`]).
//!
//! The same bound aligns the event-time sources of a job on each worker
//! ([`Alignment`], Flink's watermark alignment): a source whose capability is more
//! than [`FLOW_LAG`] ahead of the least capability of the other event-time sources
//! still reading waits for them, so that one table read far ahead in event time (a
//! small table, or a partition with little data) does not pile its rows up in a join
//! or window that waits for the others' watermarks (Nexmark q8 held every person of
//! the run in its window join: the person source finished while the auctions were
//! still read). Only sources feeding an operator that frees state by event time take
//! part (`SourceFlow::aligns`). A source that is idle (caught up) or finished does not hold the
//! others back, and the least one never waits, so the sources always progress.
//!
//! Why it cannot deadlock: a consumer drains its input on every activation whatever
//! else it waits for, and its frontier depends only on the one source's capabilities
//! and the rows in flight (no stateful stage between them holds a capability back), so
//! the frontier reaches the least capability of that source over the workers once the
//! rows in flight are consumed; the source instance holding that least capability is
//! then never paused. Inputs fed by several sources, or through another stateful
//! operator, report nothing (their frontier may wait on a source that is idle or on a
//! window that waits for this source's watermark).

use super::Time;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use timely::progress::frontier::AntichainRef;

/// How far (in timestamp units: event-time or processing-time milliseconds) a source
/// may run ahead of the input frontier of the stateful operators it feeds.
pub(crate) const FLOW_LAG: Time = 1_000;

/// One source operator's consumers on this worker (see the module docs).
#[derive(Default)]
pub(crate) struct SourceFlow {
    consumers: RefCell<Vec<Rc<Cell<Option<Time>>>>>,
    /// Whether a consumer frees its state by event time (a window aggregate, a
    /// time-bounded join): then the source takes part in its worker's [`Alignment`].
    aligns: Cell<bool>,
}

impl SourceFlow {
    /// Registers a consumer of this source's rows; it reports its input frontier
    /// through the handle.
    /// Until its first report (and after it is dropped: an input nobody observes) the
    /// consumer holds nothing back.
    pub(crate) fn consumer(&self, frees_by_event_time: bool) -> FlowConsumer {
        if frees_by_event_time {
            self.aligns.set(true);
        }
        let cell = Rc::new(Cell::new(None));
        self.consumers.borrow_mut().push(Rc::clone(&cell));
        FlowConsumer(cell)
    }

    /// Whether the source aligns with the other event-time sources (see
    /// [`SourceFlow::consumer`]). Only those whose rows wait in event-time state for
    /// the others' watermarks gain from it: a join that holds one side until the other
    /// input is complete is better served by reading the other input first.
    pub(crate) fn aligns(&self) -> bool {
        self.aligns.get()
    }

    /// The least input frontier over the consumers still taking rows: `None` when
    /// there are none (nothing registered, or every input complete).
    pub(crate) fn consumed(&self) -> Option<Time> {
        self.consumers.borrow().iter().filter_map(|c| c.get()).min()
    }
}

/// A stateful operator's report of its input frontier to the source feeding it.
pub(crate) struct FlowConsumer(Rc<Cell<Option<Time>>>);

impl FlowConsumer {
    /// Records the input frontier (times are totally ordered: at most one element;
    /// empty when the input is complete).
    pub(crate) fn observe(&self, frontier: AntichainRef<'_, Time>) {
        self.0.set(frontier.iter().min().copied());
    }
}

impl Drop for FlowConsumer {
    fn drop(&mut self) {
        self.0.set(None);
    }
}

/// Reports `frontier` to `consumer`, if the input has one.
pub(crate) fn observe(consumer: &Option<FlowConsumer>, frontier: AntichainRef<'_, Time>) {
    if let Some(c) = consumer {
        c.observe(frontier);
    }
}

/// Whether a source at capability `cap` waits before reading more: its consumers have
/// taken in nothing past `consumed`, more than [`FLOW_LAG`] behind.
pub(crate) fn pause(cap: Time, consumed: Option<Time>) -> bool {
    consumed.is_some_and(|c| cap > c.saturating_add(FLOW_LAG))
}

/// The event-time sources of one worker (see the module docs).
#[derive(Default)]
pub(crate) struct Alignment {
    sources: RefCell<Vec<Rc<Cell<Option<Time>>>>>,
}

impl Alignment {
    /// Registers an event-time source; it holds nothing back until it reports.
    pub(crate) fn member(&self) -> AlignedSource {
        let cell = Rc::new(Cell::new(None));
        self.sources.borrow_mut().push(Rc::clone(&cell));
        AlignedSource(cell)
    }

    /// Whether `source`, at capability `cap`, is more than [`FLOW_LAG`] ahead of the
    /// least capability of the other sources still reading.
    pub(crate) fn ahead(&self, source: &AlignedSource, cap: Time) -> bool {
        let least = self
            .sources
            .borrow()
            .iter()
            .filter(|c| !Rc::ptr_eq(c, &source.0))
            .filter_map(|c| c.get())
            .min();
        pause(cap, least)
    }
}

/// An event-time source's place in its worker's [`Alignment`].
pub(crate) struct AlignedSource(Rc<Cell<Option<Time>>>);

impl AlignedSource {
    /// Reports the source's capability while it has rows to read; `None` while it is
    /// idle (caught up) or once it has finished.
    pub(crate) fn report(&self, cap: Option<Time>) {
        self.0.set(cap);
    }
}

impl Drop for AlignedSource {
    fn drop(&mut self) {
        self.0.set(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use timely::progress::Antichain;

    #[test]
    fn a_source_waits_only_for_consumers_lagging_past_the_bound() {
        let flow = SourceFlow::default();
        assert_eq!(flow.consumed(), None);
        assert!(!pause(1_000_000, flow.consumed()), "no consumer: never");
        let a = flow.consumer(false);
        let b = flow.consumer(false);
        assert!(!flow.aligns());
        assert_eq!(flow.consumed(), None, "nothing reported yet");
        let unused = flow.consumer(true);
        assert!(flow.aligns());
        unused.observe(Antichain::from_elem(10).borrow());
        assert_eq!(flow.consumed(), Some(10));
        drop(unused);
        assert_eq!(
            flow.consumed(),
            None,
            "a dropped consumer holds nothing back"
        );
        a.observe(Antichain::from_elem(5_000).borrow());
        b.observe(Antichain::from_elem(7_000).borrow());
        assert_eq!(flow.consumed(), Some(5_000));
        assert!(!pause(6_000, flow.consumed()));
        assert!(!pause(5_000 + FLOW_LAG, flow.consumed()));
        assert!(pause(5_001 + FLOW_LAG, flow.consumed()));
        // A complete input no longer holds the source back.
        a.observe(Antichain::new().borrow());
        assert_eq!(flow.consumed(), Some(7_000));
        b.observe(Antichain::new().borrow());
        assert_eq!(flow.consumed(), None);
        assert!(!pause(u64::MAX, flow.consumed()));
    }

    #[test]
    fn aligned_sources_wait_only_for_a_reading_source_far_behind() {
        let alignment = Alignment::default();
        let fast = alignment.member();
        let slow = alignment.member();
        assert!(!alignment.ahead(&fast, 1_000_000), "nobody has reported");
        fast.report(Some(1_000_000));
        slow.report(Some(10_000));
        assert!(alignment.ahead(&fast, 1_000_000));
        assert!(!alignment.ahead(&slow, 10_000), "the least one never waits");
        assert!(!alignment.ahead(&fast, 10_000 + FLOW_LAG));
        slow.report(None); // idle: caught up
        assert!(!alignment.ahead(&fast, 1_000_000));
        slow.report(Some(10_000));
        drop(slow); // finished
        assert!(!alignment.ahead(&fast, 1_000_000));
    }
}
