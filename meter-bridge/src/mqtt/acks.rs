//! Acknowledgements from the ingest worker to the subscribing connection, written in batches.
//!
//! rumqttc turns every manual ack into its own request, one `poll` and one flushed write each
//! (rumqtt issue #810), so a bridge acknowledging message by message spends a system call per
//! reading where an auto-acking client spends one per burst. Here the worker hands the packet ids
//! it has finished with to the connection's [`AckLink`]; the event loop task, which owns the
//! [`rumqttc::EventLoop`], writes everything waiting as PUBACKs into the connection's buffer and
//! flushes once, between two polls.
//!
//! # Waking the event loop
//! The event loop takes the waiting acks just before it polls with nothing buffered, and marks the
//! link *parked* while it waits. A worker adding acks to a parked link sends the oldest waiting
//! one through rumqttc's request queue instead (a *doorbell*): the poll writes it and returns
//! (`Outgoing::PubAck`), and the loop takes the rest. While a doorbell is queued the loop takes
//! nothing, so acks leave in the order their messages arrived, as MQTT 3.1.1 requires
//! (MQTT-4.6.0-2). At most one doorbell is queued at a time, so the request queue stays nearly
//! empty. Invariant (all under the link's lock): the event loop never waits in a poll while acks
//! are waiting, unless a doorbell is queued.
//!
//! # One link per connection
//! An [`AckLink`] belongs to one connection (a new one after every CONNACK, announced to the worker
//! in order with the messages) and is closed when that connection fails. Acks for a closed link
//! are dropped: the broker redelivers those messages on the resumed session and [`Ingest`]
//! recognises them as duplicates. So an ack never reaches a later connection, where the packet id
//! may by then name a different message.
//!
//! [`Ingest`]: crate::Ingest

use std::sync::{Mutex, MutexGuard, PoisonError};

use rumqttc::{AsyncClient, Publish, QoS};

/// The acks of one connection, on their way from the worker to the event loop.
#[derive(Debug)]
pub struct AckLink {
    state: Mutex<LinkState>,
    doorbell: AsyncClient,
}

#[derive(Debug, Default)]
struct LinkState {
    /// Packet ids of handled QoS 1 messages, not yet written.
    waiting: Vec<u16>,
    /// The connection is up; `false` once it failed (acks are then dropped).
    open: bool,
    /// The event loop is (about to be) waiting in a poll.
    parked: bool,
    /// A doorbell is in the request queue, not yet written: it goes before everything waiting.
    rung: bool,
}

impl AckLink {
    /// A link for a connection that is up, ringing through `doorbell` (the connection's client).
    pub fn new(doorbell: AsyncClient) -> AckLink {
        AckLink {
            state: Mutex::new(LinkState {
                open: true,
                ..LinkState::default()
            }),
            doorbell,
        }
    }

    fn state(&self) -> MutexGuard<'_, LinkState> {
        // Every critical section leaves the state consistent; a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands over the packet ids in `pkids` (emptied; in the order their messages arrived) for
    /// acknowledgement; called by the worker once their messages are handled. Never waits for the
    /// event loop.
    ///
    /// Dropped if the connection has failed since (the broker redelivers them).
    pub fn acknowledge(&self, pkids: &mut Vec<u16>) {
        if pkids.is_empty() {
            return;
        }
        let mut state = self.state();
        if !state.open {
            pkids.clear();
            return;
        }
        state.waiting.append(pkids);
        if state.parked && !state.rung {
            if let Some(&oldest) = state.waiting.first() {
                // Under the lock, so a doorbell is never queued after `close` (whose caller then
                // purges the request queue). If the queue is full (the event loop will come round
                // for its requests) or the event loop is gone, the ack waits with the others.
                if self.doorbell.try_ack(&ack_of(oldest)).is_ok() {
                    state.waiting.remove(0);
                    state.rung = true;
                }
            }
        }
    }

    /// Marks the link parked and, unless a doorbell is still queued ahead of them, moves the
    /// waiting packet ids into `into`; called by the event loop right before it polls with no
    /// event buffered.
    pub fn take_and_park(&self, into: &mut Vec<u16>) {
        let mut state = self.state();
        state.parked = true;
        if !state.rung {
            into.append(&mut state.waiting);
        }
    }

    /// Marks the link busy again; called by the event loop when a poll returns.
    pub fn unpark(&self) {
        self.state().parked = false;
    }

    /// The doorbell was written (the poll returned `Outgoing::PubAck`): what waits may follow.
    pub fn rang(&self) {
        self.state().rung = false;
    }

    /// The connection failed: drops what is waiting and everything handed over from now on.
    pub fn close(&self) {
        let mut state = self.state();
        state.open = false;
        state.waiting = Vec::new();
    }
}

/// A stand-in QoS 1 message with packet id `pkid`, for [`AsyncClient::try_ack`] (which only
/// reads the QoS and the packet id).
fn ack_of(pkid: u16) -> Publish {
    let mut publish = Publish::new(String::new(), QoS::AtLeastOnce, Vec::new());
    publish.pkid = pkid;
    publish
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttc::MqttOptions;

    fn link_with_queue(capacity: usize) -> (AckLink, rumqttc::EventLoop) {
        let options = MqttOptions::new("t", "127.0.0.1", 1);
        let (client, eventloop) = AsyncClient::new(options, capacity);
        (AckLink::new(client), eventloop)
    }

    fn link() -> (AckLink, rumqttc::EventLoop) {
        link_with_queue(8)
    }

    #[test]
    fn acks_wait_for_the_event_loop_while_it_is_busy() {
        let (link, _eventloop) = link();
        link.acknowledge(&mut vec![1, 2]);
        link.acknowledge(&mut vec![3]);
        let mut taken = Vec::new();
        link.take_and_park(&mut taken);
        assert_eq!(taken, vec![1, 2, 3]);
        let mut again = Vec::new();
        link.take_and_park(&mut again);
        assert!(again.is_empty());
    }

    #[test]
    fn a_parked_link_rings_with_the_oldest_ack_once() {
        let (link, _eventloop) = link();
        let mut taken = Vec::new();
        link.take_and_park(&mut taken);
        link.acknowledge(&mut vec![1, 2, 3]);
        link.acknowledge(&mut vec![4]);
        {
            let state = link.state();
            assert!(state.rung);
            // The oldest went as the doorbell; one doorbell at a time.
            assert_eq!(state.waiting, vec![2, 3, 4]);
        }
        link.unpark();
        // The doorbell is not written yet: nothing may overtake it.
        link.take_and_park(&mut taken);
        assert!(taken.is_empty());
        link.unpark();
        link.rang();
        link.acknowledge(&mut vec![5]);
        link.take_and_park(&mut taken);
        assert_eq!(taken, vec![2, 3, 4, 5]);
    }

    #[test]
    fn a_full_request_queue_keeps_the_doorbell_ack_waiting() {
        let (link, _eventloop) = link_with_queue(1);
        let mut taken = Vec::new();
        link.take_and_park(&mut taken);
        link.acknowledge(&mut vec![1, 2]); // rings with 1: the queue is now full
        link.rang(); // written by the event loop (but in this test never read from the queue)
        link.take_and_park(&mut taken);
        assert_eq!(taken, vec![2]);
        link.acknowledge(&mut vec![3, 4]); // cannot ring
        {
            let state = link.state();
            assert!(!state.rung);
            assert_eq!(state.waiting, vec![3, 4]);
        }
        link.take_and_park(&mut taken);
        assert_eq!(taken, vec![2, 3, 4]);
    }

    #[test]
    fn a_closed_link_drops_acks() {
        let (link, _eventloop) = link();
        link.acknowledge(&mut vec![1]);
        link.close();
        assert!(!link.state().open);
        let mut more = vec![2];
        link.acknowledge(&mut more);
        assert!(more.is_empty());
        let mut taken = Vec::new();
        link.take_and_park(&mut taken);
        assert!(taken.is_empty());
    }
}
