//! Test support shipped for every backend and for users (feature `testkit`): the store
//! conformance suite, a scripted AI client, a fault-injecting store, the simulation harness,
//! and the multi-instance run of engines on the system clock over one store.

pub mod conformance;
mod faulty_store;
mod in_flight;
pub mod multi_instance;
mod scripted_ai;
pub mod sim;

pub use faulty_store::{Faults, FaultyStore};
pub use scripted_ai::{Call, ScriptedAi, Step};
