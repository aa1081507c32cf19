//! Test support shipped for every backend and for users (feature `testkit`): the store
//! conformance suite, a scripted AI client, a fault-injecting store, and the simulation
//! harness.

pub mod conformance;
mod faulty_store;
mod in_flight;
mod scripted_ai;
pub mod sim;

pub use faulty_store::{Faults, FaultyStore};
pub use scripted_ai::{Call, ScriptedAi, Step};
