//! Live events between server instances that share one store. The store only carries them: payloads
//! are opaque text here (the hub encodes and decodes them), and they are transient signals — typing,
//! presence, live copies of messages whose durable copy is already stored — never history.
//!
//! The embedded store serves one process and has no bus. The MongoDB driver carries events through a
//! collection that every instance follows with a change stream (`mongo/bus.rs`).

use std::sync::Arc;
use tokio::sync::mpsc;

/// The sending half, shared by the hub and `/readyz`.
pub trait EventBus: Send + Sync {
    /// Queues an event for the other instances. Never waits: when the queue is full (the database is
    /// down for long) the event is dropped and counted; clients recover messages by their own gap
    /// filling, and typing and presence are transient.
    fn publish(&self, payload: String);
    /// Whether the other instances' events are arriving now. A load balancer should route elsewhere
    /// while this is false.
    fn is_streaming(&self) -> bool;
}

/// What the bus hands to this instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusDelivery {
    /// An event another instance published (never this instance's own).
    Event { origin: String, payload: String },
    /// The bus lost its place and may have missed events: every local client must resync.
    Lost,
}

/// An open bus: publish through `bus`, receive the other instances' events from `deliveries`.
pub struct BusConnection {
    pub bus: Arc<dyn EventBus>,
    pub deliveries: mpsc::Receiver<BusDelivery>,
}
